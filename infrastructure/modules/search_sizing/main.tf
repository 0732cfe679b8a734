# Search task sizes from the catalogue's size: the per-book memory `make bench-search` measures
# (bench/search/bench_search.py, realistic vocabulary), plus a fixed base, with headroom, rounded up
# to the smallest valid Fargate (cpu, memory) pair at or above the service's own floor. No resources.
locals {
  # MiB. The replica holds two indexes while it swaps a new artifact in (the old one serves meanwhile):
  # 657 B a book measured at 10M books (RSS 6,573 MB from the snapshot, heads and bitmaps warmed). The
  # builder peaks in `build()` (9,155 MB at 10M books: 916 B a book), before it writes the snapshot to a
  # file and puts it from there (it no longer holds the index and the snapshot's bytes together).
  replica_base           = 512
  replica_bytes_per_book = 2 * 700
  builder_base           = 512
  builder_bytes_per_book = 1000
  headroom               = 1.25
  largest_memory         = 122880

  # The most books the largest task holds, replica or builder.
  most_books = floor(min(
    (local.largest_memory / local.headroom - local.replica_base) * 1048576 / local.replica_bytes_per_book,
    (local.largest_memory / local.headroom - local.builder_base) * 1048576 / local.builder_bytes_per_book,
  ))

  replica_need = ceil((local.replica_base + var.catalogue_books * local.replica_bytes_per_book / 1048576) * local.headroom)
  builder_need = ceil((local.builder_base + var.catalogue_books * local.builder_bytes_per_book / 1048576) * local.headroom)

  # Fargate's valid pairs (Linux): per cpu units, the memory sizes it takes, in MiB.
  fargate = flatten([
    [for m in [512, 1024, 2048] : { cpu = 256, memory = m }],
    [for m in range(1024, 4097, 1024) : { cpu = 512, memory = m }],
    [for m in range(2048, 8193, 1024) : { cpu = 1024, memory = m }],
    [for m in range(4096, 16385, 1024) : { cpu = 2048, memory = m }],
    [for m in range(8192, 30721, 1024) : { cpu = 4096, memory = m }],
    [for m in range(16384, 61441, 4096) : { cpu = 8192, memory = m }],
    [for m in range(32768, 122881, 8192) : { cpu = 16384, memory = m }],
  ])
  replica_fits = [for p in local.fargate : p if p.cpu >= var.replica_floor.cpu && p.memory >= max(local.replica_need, var.replica_floor.memory)]
  builder_fits = [for p in local.fargate : p if p.cpu >= var.builder_floor.cpu && p.memory >= max(local.builder_need, var.builder_floor.memory)]
  # The least memory that fits, then the fewest cpu units with it.
  replica_memory = min(local.replica_fits[*].memory...)
  builder_memory = min(local.builder_fits[*].memory...)
  replica        = { cpu = min([for p in local.replica_fits : p.cpu if p.memory == local.replica_memory]...), memory = local.replica_memory }
  builder        = { cpu = min([for p in local.builder_fits : p.cpu if p.memory == local.builder_memory]...), memory = local.builder_memory }

  # GiB. The builder writes its snapshot to a file on the task's ephemeral storage and publishes it from
  # there (the snapshot per book `make bench-search` measures, 533 B at 1M books, with headroom), beside
  # the image's unpacked layers and the root filesystem (the base). Fargate gives 20 GiB, and takes 21 to
  # 200 when set: 21 at least (every GiB above 20 is $0.000111 an hour, while the task runs).
  snapshot_bytes_per_book   = 600
  snapshot_headroom         = 1.2
  builder_disk_base         = 4
  builder_ephemeral_storage = max(21, ceil(var.catalogue_books * local.snapshot_bytes_per_book * local.snapshot_headroom / 1073741824 + local.builder_disk_base))
}
