//! The benchmark tool with mimalloc, a thread-caching allocator. See the library's docs.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    may_mongo_bench::main(may_mongo_bench::Allocator::Mimalloc);
}
