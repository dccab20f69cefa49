"""Layer 0 of the toolkit: errors and their one-line policy, progress bars, typed configs, value
checks, the parsing of short lists, and the rules that keep a score independent of its batch
and of BLAS's threads (reproducible). Imports nothing else of the toolkit."""
