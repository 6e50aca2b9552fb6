"""Core I/O shared by training and inference: the checkpoint format and the network InputSpec."""
