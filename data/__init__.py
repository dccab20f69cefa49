"""Built-in data shipped with the toolkit: real photographs (real/) and default models (models/)."""
