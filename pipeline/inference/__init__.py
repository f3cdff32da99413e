"""Stage 4: sliding-window prediction over whole volumes; the runner maps them back to the original grid."""
