"""Peak memory of vizkit.top_patches over 1,000 to 10,000 streamed images (blocks.2, 40 channels, k=9).

Each size runs in its own process so that its peak resident memory is its own."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

SIZES = (1_000, 5_000, 10_000)


def child(n: int) -> None:
    import vizkit
    from vizkit import data

    model = vizkit.load_model("efficientnet_lite0", verbose=False)

    def stream():
        for seed in range(n // 100):
            yield from data.composites(100, seed=seed)[0]

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    top = vizkit.top_patches(model, stream(), "blocks.2", channels=range(40), k=9)
    seconds = time.perf_counter() - start
    assert top.values.shape == (40, 9)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{n} {seconds:.1f} {before / 1024:.0f} {peak / 1024:.0f}")


def main() -> list[tuple[str, str, float]]:
    rows = []
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, str(n)], capture_output=True, text=True, check=True)
        _, seconds, before, peak = out.stdout.split()[-4:]
        rows.append(
            (
                f"top_patches, {n:,} images, blocks.2, 40 channels, k=9",
                f"vizkit (peak RSS {peak} MB, {before} MB before the pass)",
                float(seconds),
            )
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(int(sys.argv[1]))
    else:
        for row in main():
            print(row)
