"""stylelab's web demo, as Hugging Face Spaces runs it: `python app.py`."""

import os

from stylelab.demo import ROOM, launch

if __name__ == "__main__":
    # Spaces sets GRADIO_SERVER_NAME=0.0.0.0 and serves port 7860; a room's limits are on
    launch(host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), limits=ROOM)
