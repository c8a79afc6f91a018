//! `cargo run --release -p message_board [-- --listen ADDR] [--db NAME]`
//!
//! Serves the board on ADDR (default 127.0.0.1:8080). Uses the server at `MONGODB_URI`, or,
//! when that is unset, builds (first run only) and starts the embedded FerretDB, which is
//! stopped and its data folder removed on Ctrl-C.

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use may_mongo::{Client, ClientOptions};
use message_board::{Board, http};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Block SIGINT and SIGTERM before may starts its worker threads, which inherit the mask:
    // then only `sigwait` below sees them, and the embedded server is stopped properly.
    let signals = block_stop_signals();
    may::config().set_worker_pin(false);

    let mut listen = "127.0.0.1:8080".to_string();
    let mut db_name = "message_board".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--db" => db_name = args.next().ok_or("--db needs a name")?,
            _ => return Err(format!("unknown argument {arg:?} (--listen ADDR, --db NAME)").into()),
        }
    }

    let (uri, server) = match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => (uri, None),
        _ => {
            eprintln!("MONGODB_URI is unset: starting the embedded FerretDB v1.24.2 ...");
            let server = ferretdb_embed::Server::start(&Default::default())?;
            (server.uri(), Some(server))
        }
    };
    let client = Client::with_uri_str(&uri)?;
    let board = Board::new(&client, &db_name);
    board.create_indexes()?;
    // The front-page trimmer gets a client (and pool) of its own, so that it never waits in
    // line behind requests (message_board::board explains, with the figures).
    let mut maintenance = ClientOptions::parse(&uri).run()?;
    maintenance.max_pool_size = 1;
    maintenance.app_name = Some("message_board-trimmer".into());
    board.keep_front_page_trimmed(
        &Client::with_options(maintenance)?,
        std::time::Duration::from_millis(20),
    );
    let listening =
        http::serve(board, &listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!(
        "message board listening on http://{}/ (MongoDB: {uri}, database {db_name})",
        listening.local_addr()
    );

    let signal = wait_for(&signals);
    eprintln!("signal {signal}: stopping");
    drop(server);
    Ok(())
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a set we own, before any other thread exists.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: `set` is initialised and `signal` outlives the call.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}
