"""``mmtk extract``: raw media -> the generic arrays format, through a local HF checkpoint.

    mmtk extract --modality text   --model DIR --input transcripts.csv --out features/
    mmtk extract --modality audio  --model DIR --input wavs/            --out features/
    mmtk extract --modality visual --model DIR --input frames/          --out features/

Features are the chosen ``--layer``'s hidden states pooled over time (``--pooling mean``,
``cls`` for text, ``max``) or kept as a sequence (``--pooling none``: ``(T, D)``).
``--raw`` writes the model *inputs* instead (text: int64 token ids ``(T, 1)``; audio:
float32 waveform ``(S, 1)`` at the model's rate; visual: normalised pixels
``(T, C*S*S)``), for training the ``hf_text`` / ``hf_audio`` / ``hf_visual`` encoders.

Every id that cannot be used (unreadable WAV, empty transcript, empty frame folder) is
reported by id, printed and recorded in the manifest; the rest is written. The exit status is
1 when there were problems, unless ``--skip-bad`` accepts them. Re-running the same command
continues an interrupted extraction and retries the ids that failed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from mmtk import MmtkError

if TYPE_CHECKING:  # numpy, torch and the arrays format are imported when a job runs, so that
    import numpy as np  # registering this command keeps `mmtk --help` fast

MODALITIES = ("text", "audio", "visual")
POOLINGS = {"text": ("mean", "cls", "max", "none"), "audio": ("mean", "max", "none"),
            "visual": ("mean", "max", "none")}
SHOWN_PROBLEMS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Extract features (or model inputs, with --raw) from raw text, audio or "
                          "frames with a local Hugging Face checkpoint, into the generic arrays "
                          "format (<out>/<modality>.h5, labels.csv, manifest.json). Re-running "
                          "continues where an interrupted run stopped.")
    parser.add_argument("--modality", required=True, choices=MODALITIES)
    parser.add_argument("--model", help="local Hugging Face checkpoint folder (config.json + weights); "
                        "not needed for --raw audio")
    parser.add_argument("--input", required=True, help="text: CSV with header id,text; audio: folder of "
                        "<id>.wav; visual: folder of <id>/ subfolders of frames (.npy, or images "
                        "with Pillow)")
    parser.add_argument("--out", required=True, help="output folder (shared by all modalities)")
    parser.add_argument("--layer", type=int, default=-1, help="hidden state to take: 0 = embeddings, "
                        "1..L = layers, -1 = last (default)")
    parser.add_argument("--pooling", choices=("mean", "cls", "max", "none"), default=None,
                        help="over tokens/frames: mean (default), cls (text), max, or none to keep "
                        "(T, D) sequences")
    parser.add_argument("--patch-pooling", choices=("cls", "mean"), default="cls",
                        help="visual: how each frame's patch states become one vector (default cls)")
    parser.add_argument("--raw", "--tokens-only", dest="raw", action="store_true",
                        help="write model inputs (token ids / waveforms / pixels) instead of features")
    parser.add_argument("--batch-size", type=int, default=16, help="samples (visual: frames) per "
                        "forward pass (default 16)")
    parser.add_argument("--max-length", type=int, help="text: truncate to this many tokens "
                        "(default: the model's limit, at most 512); truncated ids are listed")
    parser.add_argument("--sample-rate", type=int, help="audio: target rate in Hz when no --model "
                        "is given (default 16000); files at other rates are resampled")
    parser.add_argument("--max-frames", type=int, help="visual: keep at most this many frames per "
                        "id, evenly spaced")
    parser.add_argument("--labels", help="CSV id,label copied to <out>/labels.csv")
    parser.add_argument("--splits", help="CSV id,split copied to <out>/splits.csv (split train, val, "
                        "test or unlabeled)")
    parser.add_argument("--unlabeled", help="file of ids (one per line) copied to <out>/unlabeled.txt: an "
                        "unlabelled pool the arrays dataset trains on with label -1 (ids need no label)")
    parser.add_argument("--skip-bad", action="store_true", help="exit 0 even if some ids had problems "
                        "(they are still reported and recorded)")
    parser.add_argument("--overwrite", action="store_true", help="discard this modality's earlier "
                        "output instead of continuing it")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- progress

class _Progress:
    """A rich bar on a terminal; otherwise a line at every 10 % on stderr."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.count, self.quiet = label, total, 0, quiet
        self.rich = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self.rich = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
            self.rich.start()
            self.task = self.rich.add_task(label, total=total)
        self.next_line = max(1, total // 10)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.rich is not None:
            self.rich.update(self.task, advance=n)
        elif not self.quiet and (self.count >= self.next_line or self.count == self.total):
            print(f"{self.label}: {self.count}/{self.total}", file=sys.stderr, flush=True)
            self.next_line = self.count + max(1, self.total // 10)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


# ----------------------------------------------------------------------------- helpers

def _device(name: str) -> Any:
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise MmtkError(f"--device '{name}' is not a device (use cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MmtkError(f"--device {name}: CUDA is not available on this machine")
    return device


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pool(hidden: Any, mask: Any, pooling: str) -> list[np.ndarray]:
    """Per sample: (D,) pooled, or (T, D) real steps only for pooling 'none'."""
    from .backbones import masked_pool
    if pooling == "none":
        lengths = mask.sum(1).tolist()
        return [hidden[i, :n].float().cpu().numpy() for i, n in enumerate(lengths)]
    return list(masked_pool(hidden, mask, pooling).float().cpu().numpy())


def _settings(args: argparse.Namespace, pooling: str) -> dict:
    return {"modality": args.modality, "kind": "inputs" if args.raw else "features",
            "model": None, "layer": None if args.raw else args.layer,
            "pooling": None if args.raw else pooling,
            "patch_pooling": args.patch_pooling if args.modality == "visual" and not args.raw else None,
            "max_length": None, "sample_rate": None, "max_frames": args.max_frames, "normalize": None,
            "input": str(Path(args.input).resolve())}


# ----------------------------------------------------------------------------- per modality

class _Job:
    """What one modality needs: the ids, how to load one, and how to turn a batch into arrays."""

    ids: list[str]
    problems: dict[str, str]
    notes: dict[str, Any]

    def load(self, sample_id: str) -> Any:  # raises BadSample
        raise NotImplementedError

    def run(self, samples: list[Any]) -> list[np.ndarray]:
        raise NotImplementedError


class _TextJob(_Job):
    def __init__(self, args: argparse.Namespace, pooling: str, settings: dict, device: Any):
        from .backbones import TextBackbone, load_tokenizer
        from .media import read_transcripts

        if not args.model:
            raise MmtkError("--modality text needs --model: the checkpoint folder whose tokenizer "
                            "(and, without --raw, model) to use")
        self.rows = dict(read_transcripts(args.input))
        self.ids, self.problems = list(self.rows), {}
        self.tokenizer = load_tokenizer(args.model)
        self.raw, self.pooling, self.device = args.raw, pooling, device
        self.backbone = None
        limit = getattr(self.tokenizer, "model_max_length", 512) or 512
        if not args.raw:
            self.backbone = TextBackbone(args.model, args.layer).to(device).eval()
            settings.update(self.backbone.describe())
            limit = min(limit, getattr(self.backbone.model.config, "max_position_embeddings", limit) or limit)
        self.max_length = args.max_length or min(limit, 512)
        settings.update(model=str(Path(args.model).resolve()), max_length=self.max_length,
                        tokenizer=type(self.tokenizer).__name__)
        self.notes = {"truncated": []}

    def load(self, sample_id: str) -> tuple[str, str]:
        from .media import BadSample
        text = self.rows[sample_id].strip()
        if not text:
            raise BadSample("empty transcript")
        return sample_id, text

    def run(self, samples: list[tuple[str, str]]) -> list[np.ndarray]:
        import numpy as np
        import torch
        texts = [t for _, t in samples]
        full = self.tokenizer(texts, truncation=False)["input_ids"]
        self.notes["truncated"] += [i for (i, _), ids in zip(samples, full) if len(ids) > self.max_length]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        lengths = enc["attention_mask"].sum(1)
        if self.raw:
            return [enc["input_ids"][i, :n].numpy().astype(np.int64)[:, None]
                    for i, n in enumerate(lengths.tolist())]
        with torch.inference_mode():
            hidden, mask = self.backbone(enc["input_ids"].to(self.device), lengths.to(self.device))
            return _pool(hidden, mask, self.pooling)


class _AudioJob(_Job):
    def __init__(self, args: argparse.Namespace, pooling: str, settings: dict, device: Any):
        from .backbones import AudioBackbone
        from .media import list_audio, natural_key

        found, self.unsupported = list_audio(args.input)
        self.paths = dict(found)
        self.ids = sorted(set(self.paths) | set(self.unsupported), key=natural_key)
        self.problems = {}
        self.raw, self.pooling, self.device = args.raw, pooling, device
        self.backbone, self.batch_size = None, args.batch_size
        if args.model:
            self.backbone = AudioBackbone(args.model, args.layer).to(device).eval()
            self.rate = self.backbone.sample_rate
            if args.sample_rate and args.sample_rate != self.rate:
                raise MmtkError(f"--sample-rate {args.sample_rate} differs from the model's "
                                f"{self.rate} Hz; leave --sample-rate out when --model is given")
            settings.update(model=str(Path(args.model).resolve()))
            if not args.raw:
                settings.update(self.backbone.describe(), normalize=self.backbone.normalize)
                if not self.backbone.pads_safely:
                    self.batch_size = 1   # group-norm front end: padding would change the features
        else:
            if not args.raw:
                raise MmtkError("--modality audio needs --model (a wav2vec2/HuBERT/WavLM checkpoint "
                                "folder) unless --raw writes waveforms only")
            self.rate = args.sample_rate or 16000
        settings.update(sample_rate=self.rate)
        self.notes = {"resampled": []}

    def load(self, sample_id: str) -> np.ndarray:
        from .media import BadSample, read_wav
        if sample_id not in self.paths:
            raise BadSample(self.unsupported[sample_id])
        wave, rate = read_wav(self.paths[sample_id], self.rate)
        if rate != self.rate:
            self.notes["resampled"].append(sample_id)
        return wave

    def run(self, samples: list[np.ndarray]) -> list[np.ndarray]:
        import numpy as np
        import torch
        if self.raw:
            return [w.astype(np.float32)[:, None] for w in samples]
        out = []
        for group in _chunks(samples, self.batch_size):
            lengths = torch.tensor([len(w) for w in group])
            wave = torch.zeros(len(group), int(lengths.max()))
            for i, w in enumerate(group):
                wave[i, :len(w)] = torch.from_numpy(w)
            with torch.inference_mode():
                hidden, mask = self.backbone(wave.to(self.device), lengths.to(self.device))
                out += _pool(hidden, mask, self.pooling)
        return out


class _VisualJob(_Job):
    def __init__(self, args: argparse.Namespace, pooling: str, settings: dict, device: Any):
        from .backbones import VisualBackbone
        from .media import list_frame_dirs

        if not args.model:
            raise MmtkError("--modality visual needs --model: an image-model checkpoint folder (ViT "
                            "family), also with --raw (it sets the image size and normalisation)")
        self.dirs = dict(list_frame_dirs(args.input))
        self.ids, self.problems = list(self.dirs), {}
        self.backbone = VisualBackbone(args.model, args.layer).to(device).eval()
        self.raw, self.pooling, self.device = args.raw, pooling, device
        self.patch_pooling, self.batch_size, self.max_frames = args.patch_pooling, args.batch_size, args.max_frames
        settings.update(model=str(Path(args.model).resolve()), image_size=self.backbone.image_size,
                        channels=self.backbone.channels)
        if not args.raw:
            settings.update(self.backbone.describe())
        self.notes = {}

    def load(self, sample_id: str) -> Any:
        import numpy as np
        import torch

        from .media import read_frames
        frames = read_frames(self.dirs[sample_id])
        if self.max_frames and len(frames) > self.max_frames:
            keep = np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int)
            frames = [frames[i] for i in keep]
        prepared = [self.backbone.prepare(torch.from_numpy(f)[None].to(self.device)) for f in frames]
        return torch.cat(prepared)                                  # (T, C, S, S)

    def run(self, samples: list[Any]) -> list[np.ndarray]:
        import torch

        from .backbones import masked_pool
        out = []
        for pixels in samples:
            if self.raw:
                out.append(pixels.reshape(pixels.shape[0], -1).float().cpu().numpy())
                continue
            per_frame = []
            with torch.inference_mode():
                for chunk in torch.split(pixels, self.batch_size):
                    hidden, mask = self.backbone(chunk)
                    per_frame.append(masked_pool(hidden, mask, self.patch_pooling))
                frames = torch.cat(per_frame)[None]                 # (1, T, H)
                mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
                out += _pool(frames, mask, self.pooling)
        return out


JOBS: dict[str, Callable[..., _Job]] = {"text": _TextJob, "audio": _AudioJob, "visual": _VisualJob}


# ----------------------------------------------------------------------------- command

def copy_unlabelled(source: str | Path, out: Path, known: list[str]) -> int:
    """Write ``out/unlabeled.txt`` from a list of ids, each one an id of the inputs; an
    existing, different list is an error (all modalities of a folder share one pool)."""
    from mmtk import DataError
    from mmtk import arrays_format as fmt

    ids = fmt.read_id_list(Path(source), "--unlabeled")
    unknown = sorted(set(ids) - set(known))
    if unknown:
        raise DataError(f"--unlabeled {source} lists id '{unknown[0]}', which is not among the "
                        f"--input ids ({len(unknown)} such id(s)); list ids of the inputs only.")
    target = out / f"{fmt.UNLABELED}.txt"
    text = "".join(f"{i}\n" for i in ids)
    if target.exists() and target.read_text(encoding="utf-8-sig") != text:
        raise DataError(f"'{target}' already exists with a different id list than '{source}'; all "
                        "modalities of one output folder share one unlabelled pool. Use another "
                        "--out folder or remove the old file.")
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return len(ids)


def run(args: argparse.Namespace) -> int:
    from mmtk import arrays_format as fmt

    from .arrays import ArraysWriter, copy_table
    from .backbones import versions
    from .media import BadSample

    if args.batch_size < 1:
        raise MmtkError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.raw:
        if args.pooling not in (None, "none"):
            raise MmtkError("--raw writes model inputs (token ids, waveforms, pixels), which are not "
                            f"pooled; leave out --pooling {args.pooling}")
        pooling = "none"
    else:
        pooling = args.pooling or "mean"
        if pooling not in POOLINGS[args.modality]:
            hint = " (for a ViT's [CLS] token per frame use --patch-pooling cls)" if args.modality == "visual" else ""
            raise MmtkError(f"--pooling {pooling} does not apply to {args.modality}; choose one of "
                            f"{', '.join(POOLINGS[args.modality])}{hint}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MmtkError(f"--out '{out}' exists and is not a folder")
    device = _device(args.device)
    settings = _settings(args, pooling)
    job = JOBS[args.modality](args, pooling, settings, device)   # reads inputs, loads the model
    settings["versions"] = versions()
    labelled = copy_table(args.labels, out, fmt.LABELS, "labels") if args.labels else None
    if args.splits:
        copy_table(args.splits, out, fmt.SPLITS, "splits")
    pool = copy_unlabelled(args.unlabeled, out, job.ids) if args.unlabeled else None

    writer = ArraysWriter(out, args.modality, settings, overwrite=args.overwrite)
    todo = [i for i in job.ids if i not in writer.done]
    skipped = len(job.ids) - len(todo)
    problems: dict[str, str] = dict(job.problems)
    status, written = "failed", 0
    progress = _Progress(f"{args.modality} {'inputs' if args.raw else 'features'}", len(todo), args.quiet)
    try:
        step = 1 if args.modality == "visual" else getattr(job, "batch_size", args.batch_size)
        for chunk in _chunks(todo, step):
            ready, samples = [], []
            for sample_id in chunk:
                try:
                    samples.append(job.load(sample_id))
                    ready.append(sample_id)
                except BadSample as exc:
                    problems[sample_id] = str(exc)
            if samples:
                for sample_id, array in zip(ready, job.run(samples)):
                    writer.write(sample_id, array)
                    written += 1
            progress.advance(len(chunk))
        status = "complete with problems" if problems else "complete"
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        progress.close()
        writer.close(status, problems, **job.notes)
    if status == "interrupted":
        print(f"\ninterrupted after {written} new id(s); run the same command again to continue",
              file=sys.stderr)
        return 130

    print(f"{args.modality}: wrote {written} id(s) to {writer.path}"
          + (f" ({skipped} already there)" if skipped else "")
          + (f"; labels for {labelled} id(s) in {out / fmt.LABELS.name}" if labelled is not None else "")
          + (f"; {pool} unlabelled id(s) in {out / (fmt.UNLABELED + '.txt')}" if pool is not None else ""))
    for key, ids in job.notes.items():
        if ids:
            print(f"  {key}: {len(ids)} id(s) (listed in the manifest)")
    if problems:
        print(f"{len(problems)} id(s) could not be extracted and are NOT in {writer.path.name} "
              f"(recorded in {out / fmt.MANIFEST}):", file=sys.stderr)
        for sample_id, message in sorted(problems.items())[:SHOWN_PROBLEMS]:
            print(f"  {sample_id}: {message}", file=sys.stderr)
        if len(problems) > SHOWN_PROBLEMS:
            print(f"  … and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
        if not args.skip_bad:
            print("fix them and run the same command again (only the missing ids are extracted), or "
                  "pass --skip-bad to accept them as missing", file=sys.stderr)
            return 1
    return 0
