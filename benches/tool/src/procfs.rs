//! What the kernel says about this process: resident memory and open connections (Linux
//! `/proc`). Each measured point runs in a process of its own, so these are the contender's.

use std::collections::HashSet;

/// A field of `/proc/self/status` in KiB: `VmRSS` (now) or `VmHWM` (the peak so far).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// This process's established TCP connections to `port`: the socket inodes among its file
/// descriptors, matched against `/proc/self/net/tcp{,6}`. Counted from outside the driver,
/// so every contender is counted the same way (monitoring connections included).
pub fn connections_to(port: u16) -> usize {
    let mut inodes = HashSet::new();
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut n = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            // cols[2] is the remote "ADDR:PORT" (port in hex), cols[3] the state (01 =
            // established), cols[9] the inode.
            let remote_port = cols[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && cols[3] == "01" && inodes.contains(cols[9]) {
                n += 1;
            }
        }
    }
    n
}
