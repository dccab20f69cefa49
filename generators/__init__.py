"""GAN generators with a swappable last upsampling layer."""
