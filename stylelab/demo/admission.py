"""Who may paint what on a demo server: the limits of a room, the visitor's inputs read and refused.

Served to a room (any address but localhost, or a share link), the demo holds
to Limits: a cap on size x evaluations per run and on paintings queued per
visitor (Admissions). Always: uploads read into RGB no larger than MAX_SIDE,
messages without the server's paths (public), and one log line, not a
traceback, per visitor's mistake (refuse).
"""

import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from stylelab.images import ImageError, load_image, open_image, to_pil

MAX_SIDE = 2048  # uploads are downscaled to this longest side before anything else
MIN_SIDE = 16  # smaller than this and there is nothing for the network to see
LOCAL = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("stylelab.demo")


@dataclass(frozen=True)
class Limits:
    """What one visitor may ask of a server shared with a room."""

    max_work: int = 256 * 256 * 200  # size^2 x evaluations per run: 256 px x 200 or 512 px x 50, ~2 min here
    per_visitor: int = 1  # paintings queued or running at once, per visitor
    hold: float = 600.0  # seconds a queued painting that never starts (a closed tab) still counts


ROOM = Limits()


class Mistake(ImageError):
    """Something a visitor can change: the message, and the name of the input to change (the API's)."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def public(message):
    """message without the server's paths: each absolute path is cut to its file name."""
    return re.sub(r"(?<![\w.:/])(?:[A-Za-z]:)?[\\/](?:[^\s\\/:'\"()]+[\\/])*([^\s\\/:'\"()]*)", r"\1", str(message))


def refuse(message, who=None):
    """A visitor's mistake: its message in the UI, one line in the server's log, no traceback."""
    import gradio as gr

    message = public(message)
    log.warning("refused%s: %s", f" ({who})" if who else "", message)
    return gr.Error(message, print_exception=False)


def visitor(request):
    """Who is asking: the client's address, or behind a local proxy or tunnel the address it forwards."""
    client = getattr(getattr(request, "client", None), "host", None) or "unknown"
    forwarded = (request.headers.get("x-forwarded-for") or "") if request is not None else ""
    return (forwarded.split(",")[0].strip() or client) if client in LOCAL else client


class Admissions:
    """The paintings each visitor has queued or running, so that no one visitor fills a shared queue.

    admit() is called when a painting joins the queue (Gradio's validator),
    start() when a worker takes it up, finish() when it ends however it ends.
    A queued painting whose job never starts (its tab was closed) stops
    counting after limits.hold seconds.
    """

    def __init__(self, limits):
        self.limits = limits
        self.lock = threading.Lock()
        self.held = defaultdict(list)  # visitor -> [admitted at, started]

    def admit(self, who):
        with self.lock:
            now = time.monotonic()
            self.held[who] = [h for h in self.held[who] if h[1] or now - h[0] < self.limits.hold]
            if len(self.held[who]) >= self.limits.per_visitor:
                return False
            self.held[who].append([now, False])
            return True

    def start(self, who):
        with self.lock:
            waiting = [h for h in self.held[who] if not h[1]]
            if waiting:
                waiting[0][1] = True
            else:  # not admitted through the queue's validator: counts from now
                self.held[who].append([time.monotonic(), True])

    def finish(self, who):
        with self.lock:
            started = [h for h in self.held[who] if h[1]]
            if started:
                self.held[who].remove(started[0])
            if not self.held[who]:
                del self.held[who]


def read_upload(path, role):
    """An uploaded file -> an RGB PIL image no larger than MAX_SIDE, or ImageError for the UI."""
    if not path:
        raise ImageError(f"add a {role} image (upload one or click a built-in one)")
    try:
        image = open_image(path)
    except ImageError as error:  # named by its file name: the server's folders are nobody's business
        raise ImageError(f"the {role} image: {public(error)}") from None
    if min(image.size) < MIN_SIDE:
        raise ImageError(f"the {role} image is {image.size[0]}x{image.size[1]} pixels; "
                         f"give one at least {MIN_SIDE} pixels on each side")
    image.thumbnail((MAX_SIDE, MAX_SIDE))  # huge uploads shrink first, so nothing else pays for them
    return to_pil(load_image(image))  # any mode (RGBA, CMYK, 16-bit, EXIF-rotated) -> RGB


def read_painting(content, styles, weights, size, iterations, limits=None):
    """(photo, [(file, image, weight)]) for a run, or a Mistake naming the input to change.

    Styles with weight 0 are left out; each weight is its style's strength.
    limits caps size^2 x evaluations (a server shared with a room).
    """
    if limits and int(size) ** 2 * int(iterations) > limits.max_work:
        most = limits.max_work // int(size) ** 2
        raise Mistake(f"this server paints at most {limits.max_work // (256 * 256)} evaluations at 256 px per "
                      f"run (size x size x evaluations); at {int(size)} px that is {most}: lower the size or "
                      f"the iterations", "iterations")

    def read(path, role, field):
        try:
            return read_upload(path, role)
        except ImageError as error:
            raise Mistake(str(error), field) from None

    photo = read(content, "content", "content")
    chosen = [(f, read(f, f"style {k + 1}", f"style_{k + 1}"), float(w or 0))
              for k, (f, w) in enumerate(zip(styles, weights)) if f]
    if not chosen:
        raise Mistake("add at least one style image", "style_1")
    if max(w for _, _, w in chosen) <= 0:
        raise Mistake("every style's weight is 0: move at least one above 0", "weight_1")
    return photo, [(f, image, w) for f, image, w in chosen if w > 0]


def refusal(painting, who, limits=None, admissions=None):
    """Why a painting may not join the queue, as (message, the input to change), or None to admit it."""
    try:
        read_painting(painting.content, painting.styles, painting.weights, painting.size, painting.iterations,
                      limits)
    except Mistake as mistake:
        return public(mistake), mistake.field
    if admissions and not admissions.admit(who):
        return ("you already have a painting queued or running on this server: wait for it to finish, or "
                "press Stop, then Paint again", "content")
    return None
