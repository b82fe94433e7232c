"""`embedhub bench`: encoding speed of every embedhub backend next to sentence-transformers and
Infinity, on the same texts cut to exact token lengths, each peer in its own process.

`texts` builds the inputs, `flops` measures the machine's matmul peaks and counts a forward
pass, `worker` (and the stand-alone `infinity_worker`) run one peer in a child process, `runner`
plans the run and reports it. Nothing in models/, engine/ or kb/ imports this package.
"""
