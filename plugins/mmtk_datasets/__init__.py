"""mmtk plugin: readers for real data (MMIN layout, MMSA pickles, generic arrays, Handwritten)."""
