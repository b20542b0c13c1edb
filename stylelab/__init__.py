"""stylelab: a teaching kit for neural style transfer (Gatys et al. 2016; Johnson et al. 2016).

Everything that is not an exercise lives here: backbones (backbones.py), image
files (images.py), built-in example images (examples.py), the transfer driver
(transfer.py) and the command line (cli.py). The exercises live in solutions/
and, as stubs for students, in starter/.
"""

__version__ = "0.1.0"
