//! The processes `cargo lambda watch` runs for a local stack, found by their program and the
//! stack's table in their environment: to kill one mid-invocation, as an environment dies.

use std::process::Command;

/// Kills (SIGKILL) the process of function `name` on the stack of `table` that is pushing the most —
/// holding the most connections to the gateway's `@connections` (an idle one holds the one
/// its init opened) — as a Lambda environment that crashes or times out mid-invocation ends;
/// the others live on to take the next invocation. Whether one was pushing.
pub fn kill_busiest(name: &str, table: &str, gateway_port: u16) -> bool {
    let table = format!("TABLE_NAME={table}");
    let to_gateway = sockets_to_port(gateway_port);
    let mut busiest: Option<(usize, i32)> = None;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let program = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let program = program.split(|b| *b == 0).next().unwrap_or_default();
        if !String::from_utf8_lossy(program).ends_with(&format!("/{name}")) {
            continue;
        }
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == table.as_bytes())
        {
            continue;
        }
        let connections = std::fs::read_dir(dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|link| to_gateway.contains(&link.to_string_lossy().into_owned()))
            .count();
        if connections > 1 && busiest.is_none_or(|(most, _)| connections > most) {
            busiest = Some((connections, pid));
        }
    }
    busiest.is_some_and(|(_, pid)| {
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The open TCP sockets connected to `port` on this machine, named as `/proc/{pid}/fd` links
/// name them (`socket:[inode]`).
fn sockets_to_port(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields.get(2)?.rsplit(':').next()?;
            let inode = fields.get(9)?;
            (u16::from_str_radix(remote_port, 16).ok()? == port)
                .then(|| format!("socket:[{inode}]"))
        })
        .collect()
}
