"""The declared Python API (``mtl.train``, ``mtl.bench``, ``mtl.load``; README "Python API").

The top layer of core/: it calls the trainer (:mod:`mtl.training`), the study code (:mod:`mtl.study`) and the run
folders (:mod:`mtl.runs`) as the command line does, and is what a notebook imports through ``mtl``. Each function
lives in its own module and is named lazily by ``mtl.__getattr__``, so ``import mtl`` stays free of torch.
"""
