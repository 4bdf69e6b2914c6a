"""mmtk's built-in basic components: registered through the `mmtk` entry-point group."""
