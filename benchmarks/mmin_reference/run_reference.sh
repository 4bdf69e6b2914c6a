#!/usr/bin/env bash
# Run AIM3-RUC/MMIN's own code (patched for CPU with mmin_cpu.patch) on a corpus written by
# write_corpus.py: stage 1 utt_fusion (CAP_utt_fusion.sh's flags), then stage 2 mmin
# (CAP_mmin.sh's flags), fold 1 only, on CPU.
#
#   run_reference.sh REF_DIR DATA_DIR OUT_DIR [NITER1 NDECAY1 NITER2 NDECAY2]
#
# REF_DIR: a checkout of MMIN master with mmin_cpu.patch applied. Epochs default to the
# scripts' 10+10 / 30+30. Every other flag is the scripts' own, except:
#   --gpu_ids=-1 (CPU), --input_dim_* from the corpus, --checkpoints_dir/--log_dir under
#   OUT_DIR, and stage 2 WITHOUT --verbose: with --verbose the reference selects its epoch on
#   the test set (its issue #10); set VERBOSE=1 to run it as published.
# MMIN_SEED (default 0) seeds python, numpy and torch (a patch addition). Needs h5py,
# scikit-learn and torch.
set -euo pipefail
ref=$(realpath "$1"); data=$(realpath "$2"); mkdir -p "$3"; out=$(realpath "$3")
n1=${4:-10}; d1=${5:-10}; n2=${6:-30}; d2=${7:-30}
export MMIN_SEED=${MMIN_SEED:-0}
verbose=""; [ "${VERBOSE:-0}" = 1 ] && verbose="--verbose"

dims=$(python - "$data" <<'EOF'
import sys, h5py
root = sys.argv[1]
out = []
for letter, name in (("A", "comparE"), ("V", "denseface"), ("L", "bert_large")):
    with h5py.File(f"{root}/{letter}/{name}.h5", "r") as f:
        out.append(str(f[next(iter(f))].shape[1]))
print(" ".join(out))
EOF
)
read -r dim_a dim_v dim_l <<<"$dims"

# the reference reads its data paths from this JSON file (hard-coded absolute paths upstream)
cat >"$ref/data/config/IEMOCAP_config.json" <<EOF
{"data_root": "$data", "target_root": "$data/target", "total_cv": 10, "feature_root": "$data"}
EOF
mkdir -p "$out/logs" "$out/checkpoints"
cd "$ref"
start=$(date +%s)
python train_baseline.py --dataset_mode=multimodal --model=utt_fusion \
  --gpu_ids=-1 --modality=AVL --corpus_name=IEMOCAP \
  --log_dir="$out/logs" --checkpoints_dir="$out/checkpoints" --print_freq=10 \
  --A_type=comparE --input_dim_a="$dim_a" --norm_method=trn --embd_size_a=128 --embd_method_a=maxpool \
  --V_type=denseface --input_dim_v="$dim_v" --embd_size_v=128 --embd_method_v=maxpool \
  --L_type=bert_large --input_dim_l="$dim_l" --embd_size_l=128 \
  --output_dim=4 --cls_layers=128,128 --dropout_rate=0.3 \
  --niter="$n1" --niter_decay="$d1" --in_mem --beta1=0.9 \
  --batch_size=128 --lr=2e-4 --run_idx=1 \
  --name=CAP_utt_fusion --suffix="{modality}_run{run_idx}" \
  --has_test --cvNo=1
mid=$(date +%s)
python train_miss.py --dataset_mode=multimodal_miss --model=mmin \
  --log_dir="$out/logs" --checkpoints_dir="$out/checkpoints" --gpu_ids=-1 \
  --A_type=comparE --input_dim_a="$dim_a" --norm_method=trn --embd_size_a=128 --embd_method_a=maxpool \
  --V_type=denseface --input_dim_v="$dim_v" --embd_size_v=128 --embd_method_v=maxpool \
  --L_type=bert_large --input_dim_l="$dim_l" --embd_size_l=128 \
  --AE_layers=256,128,64 --n_blocks=5 --num_thread=0 --corpus=IEMOCAP \
  --pretrained_path="$out/checkpoints/CAP_utt_fusion_AVL_run1" \
  --ce_weight=1.0 --mse_weight=4.0 --cycle_weight=2.0 \
  --output_dim=4 --cls_layers=128,128 --dropout_rate=0.5 \
  --niter="$n2" --niter_decay="$d2" $verbose --print_freq=10 --in_mem \
  --batch_size=128 --lr=2e-4 --run_idx=1 --weight_decay=1e-5 \
  --name=mmin_IEMOCAP --suffix="block_{n_blocks}_run{run_idx}" --has_test \
  --cvNo=1
end=$(date +%s)
echo "wall time: stage 1 $((mid - start)) s, stage 2 $((end - mid)) s" | tee "$out/wall_time.txt"
