"""What the image store's key costs at ImageNet-LT size (115,846 train images): stat() of every file
(size + mtime, and size + mtime + inode + ctime, the key used) against reading and hashing every file.

    python benchmarks/bench_image_store_key.py [--files 115846] [--sample 3000] [--kb 110]

Writes ``--files`` synthetic files into a temporary folder (``--sample`` of them ``--kb`` KB, the average
ImageNet JPEG; the rest 16 bytes), times the stat keys over all of them and the hashes over the sample, and
extrapolates the hashes to ``--files`` (page cache warm: a cold disk adds the reads). Never asserts a timing.
"""

import argparse
import hashlib
import os
import platform
import shutil
import tempfile
import time
import zlib
from pathlib import Path


def stat_key(paths, full):
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        extra = f"\0{stat.st_ino}\0{stat.st_ctime_ns}" if full else ""
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}{extra}\n".encode())
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=115_846)
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--kb", type=int, default=110)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="oltr-store-key-"))
    try:
        blob = os.urandom(args.kb * 1000)
        paths = []
        for index in range(args.files):
            folder = root / f"{index // 1000:03d}"
            folder.mkdir(exist_ok=True)
            path = folder / f"{index}.jpg"
            path.write_bytes(blob if index < args.sample else blob[:16])
            paths.append(str(path))
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {args.files:,} files")
        for full, name in ((False, "size + mtime"), (True, "size + mtime + inode + ctime")):
            start = time.perf_counter()
            stat_key(paths, full)
            print(f"stat key, {name}: {time.perf_counter() - start:.3f} s (all {args.files:,} files)")
        hashes = {"crc32": zlib.crc32, "sha256": lambda data: hashlib.sha256(data).digest()}
        for name, digest in hashes.items():
            start = time.perf_counter()
            for path in paths[: args.sample]:
                with open(path, "rb") as handle:
                    digest(handle.read())
            seconds = time.perf_counter() - start
            print(
                f"read + {name} of {args.sample:,} x {args.kb} KB: {seconds:.3f} s -> "
                f"{seconds * args.files / args.sample:.1f} s for {args.files:,} (extrapolated, page cache warm)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
