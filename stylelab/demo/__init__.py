"""The web demo: Gatys et al. (CVPR 2016) style transfer painted live in the browser, and Johnson et
al.'s (2016) fast network beside it.

A Gradio app around the kit's exercises, whichever implementation
stylelab.impl.default picks (the reference solutions, or in a student release
the student's own starter): the engine runs their losses, and colour
preservation uses their match_color and luminance_only. No second
implementation. One file per concern:

- `painting.py`: what a request paints, streamed as it paints (`Painting`,
  `paint`, `stream`), and the fast network's pictures (`fast_stylize`);
- `admission.py`: who may paint what: a room's `Limits`, the visitors'
  inputs read and refused without the server's paths;
- `layout.py`: the page (`build_demo`), its tabs and the API's names;
- `server.py`: serving it (`launch`), to localhost or to a room.

`build_demo()` builds the app and launches nothing; `python -m stylelab demo`
(or `make demo`) launches it.
"""

from stylelab.demo.admission import MAX_SIDE, ROOM, Limits, public, read_painting, read_upload
from stylelab.demo.layout import build_demo
from stylelab.demo.painting import Painting, fast_stylize, loss_figure, paint, stop_all, strength
from stylelab.demo.server import addresses, launch, parse_auth, sweep
from stylelab.transfer import blend_styles

__all__ = ["MAX_SIDE", "ROOM", "Limits", "Painting", "addresses", "blend_styles", "build_demo", "fast_stylize",
           "launch", "loss_figure", "paint", "parse_auth", "public", "read_painting", "read_upload", "stop_all",
           "strength", "sweep"]
