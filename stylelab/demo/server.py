"""Serving the demo: to one person on localhost, or to a room behind a password and the room's limits.

`launch` builds the app (stylelab.demo.layout) and serves it until
interrupted: uploads capped at MAX_UPLOAD, visitors' files deleted after an
hour (keep_sweeping), every painting stopped and every file deleted when it
closes. `python -m stylelab demo` (or `make demo`) calls it.
"""

import logging
import threading
import time

from stylelab.demo.admission import LOCAL, ROOM, log
from stylelab.demo.layout import build_demo
from stylelab.demo.painting import stop_all

MAX_UPLOAD = "20mb"  # a phone's photo fits; anything larger is refused before it is stored
CACHE_CLEANUP = (600, 3600)  # every 10 minutes, delete uploads and results older than an hour


def parse_auth(text):
    """'USER:PASS' -> (user, password); ValueError naming the expected form otherwise."""
    user, colon, password = (text or "").partition(":")
    if not (user and colon and password):
        raise ValueError("--auth (or STYLELAB_AUTH) takes USER:PASS, both non-empty, e.g. --auth class:s3cret")
    return user, password


def addresses(host, port):
    """The URLs a visitor can open: for 0.0.0.0 (every interface) the machine's own addresses, not 0.0.0.0."""
    import socket

    if host not in ("0.0.0.0", "::", ""):
        return [f"http://{host}:{port}/"]
    found = set()
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    try:  # the address of the interface a packet would leave by (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    found.discard("127.0.0.1")
    return [f"http://{address}:{port}/" for address in sorted(found)] + [f"http://127.0.0.1:{port}/"]


def sweep(demo, age):
    """Delete the files demo's visitors left that are over age seconds old (None: all of them).

    Gradio's function, which keeps the app's own files (defaults, thumbnails).
    Returns False when an upload landed mid-sweep ("Set changed size during
    iteration"): the next sweep deletes what this one missed.
    """
    from gradio.route_utils import delete_files_created_by_app

    try:
        delete_files_created_by_app(demo, age)
        return True
    except RuntimeError:
        return False


def keep_sweeping(demo, every, age):
    """sweep(demo, age) every `every` seconds while demo runs.

    Not Gradio's own delete_cache: its task dies the first time an upload
    lands while it sweeps (Gradio 6.31), and nothing is deleted after that.
    """
    while True:
        time.sleep(every)
        if not demo.is_running:
            return
        sweep(demo, age)


def launch(host="127.0.0.1", port=7860, share=False, auth=None, limits="auto", block=True,
           cache_cleanup=CACHE_CLEANUP, **build):
    """Build and serve the demo until interrupted (block=False: return the running app).

    auth: 'USER:PASS' or None. limits: a Limits, None for none, or "auto": ROOM
    when serving beyond this machine (any other host, or a share link).
    cache_cleanup: (every, age) in seconds: visitors' uploads and results older than age are deleted.
    build: passed to build_demo (examples_dir, model_path).
    """
    credentials = parse_auth(auth) if auth else None
    if limits == "auto":
        limits = ROOM if share or host not in LOCAL else None
    if not log.handlers:  # one line per refused request, in the lecturer's terminal
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s stylelab demo: %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    demo = build_demo(limits=limits, **build)
    threading.Thread(target=keep_sweeping, args=(demo, *cache_cleanup), daemon=True, name="stylelab-sweep").start()
    settings = dict(server_name=host, server_port=port, prevent_thread_lock=True, auth=credentials,
                    max_file_size=MAX_UPLOAD, quiet=not block)
    try:
        demo.launch(share=share, **settings)
    except Exception as error:  # a share link needs the internet; serving locally does not
        if not share:
            raise
        print(f"no public link: {error}. Serving locally only.")
        demo.launch(share=False, **settings)
    if not block:
        return demo
    if share and not getattr(demo, "share_url", None):
        print("no public link (no internet connection?); serving locally only")
    print(f"stylelab demo on {' or '.join(addresses(host, port))} (Ctrl-C to stop)"
          + (f"; user {credentials[0]!r} and its password required" if credentials else ""))
    if limits:
        print(f"serving a room: each visitor may have {limits.per_visitor} painting queued or running, of at most "
              f"{limits.max_work // (256 * 256)} evaluations at 256 px (--no-limits lifts this)")
    try:
        demo.block_thread()
    finally:
        stop_all()
        sweep(demo, None)  # what visitors left goes with the server
