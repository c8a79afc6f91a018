//! The benchmark tool with the system allocator (glibc malloc). See the library's docs.

fn main() {
    may_mongo_bench::main(may_mongo_bench::Allocator::Glibc);
}
