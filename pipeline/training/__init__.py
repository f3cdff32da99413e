"""Stage 3: patch sampling, augmentation, the U-Net, fitting, cross-validation, devices and precision."""
