"""How soon the demo shows its first painting, and its first stylised one, and how soon Stop ends a run.

The goal: a visibly stylised picture within 2 s at 256 px on a 2-core CPU.
The demo is launched on a free localhost port and driven with gradio_client,
as a browser would; each trial submits a 256 px, 100-iteration run, waits for
the first streamed image (the start: the photo in the painting's colours) and
for the first after evaluation 2 (the first step, the first stylised one),
then stops the run. The peer measured in the same run is the floor: the
engine's first two evaluations at 256 px, called directly. Stop is timed from
the cancel to the end of the painting thread: the tests only check that it
ends, with a limit no busy machine can reach.

    python -m bench.bench_demo [--trials 5]
"""

import argparse
import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gradio_client import Client, handle_file

from bench.machine import describe
from stylelab import engine
from stylelab.demo import build_demo, stop_all
from stylelab.transfer import run_transfer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    examples = Path(tempfile.mkdtemp())
    demo = build_demo(examples)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    firsts, stylised, stops = [], [], []
    for _ in range(args.trials):
        start = time.perf_counter()
        job = client.submit(content=handle_file(str(examples / "astronaut.png")),
                            style_1=handle_file(str(examples / "swirls.png")), size=256, iterations=100,
                            api_name="/paint")
        while not job.outputs():
            time.sleep(0.01)
        firsts.append(time.perf_counter() - start)
        while evaluations(job) < 2:
            time.sleep(0.01)
        stylised.append(time.perf_counter() - start)
        job.cancel()
        cancelled = time.perf_counter()
        while any(t.name == "stylelab-paint" for t in threading.enumerate()):
            time.sleep(0.005)
        stops.append(time.perf_counter() - cancelled)
        stop_all()
    demo.close()
    floors = []

    def after_two(t, img, losses):
        if t == 1:
            raise engine.Stop

    for _ in range(args.trials):
        start = time.perf_counter()
        run_transfer("astronaut", "swirls", size=256, num_iters=100, callback=after_two)
        floors.append(time.perf_counter() - start)
    first, second, floor = (statistics.median(x) for x in (firsts, stylised, floors))
    print(describe())
    print(f"click to first streamed image at 256 px: {first:.2f} s (median of {args.trials}; "
          f"min {min(firsts):.2f}, max {max(firsts):.2f})")
    print(f"click to first stylised image (evaluation 2): {second:.2f} s (min {min(stylised):.2f}, "
          f"max {max(stylised):.2f})")
    print(f"floor, the engine's first two evaluations of such a run, called directly: {floor:.2f} s; ratio {second / floor:.2f}x")
    print(f"goal: a stylised image within 2 s: {'met' if second < 2 else 'NOT met'}")
    print(f"Stop to the end of the painting thread: {statistics.median(stops):.2f} s (median; "
          f"max {max(stops):.2f})")


def evaluations(job):
    """The evaluation count of the job's newest streamed status ('painting: 7 / 100 ...'), or 0."""
    outputs = job.outputs()
    match = re.match(r"painting: (\d+) /", outputs[-1][3]) if outputs else None
    return int(match.group(1)) if match else 0


if __name__ == "__main__":
    main()
