//! Without a `web:` section, a webhook skill or a connector route, the bot listens on no
//! port at all. Alone in its test binary, so the process's listening sockets are the bot's.

use std::collections::HashSet;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot, connector_from_yaml};

/// The TCP sockets this process listens on: socket inodes of `/proc/self/fd` that
/// `/proc/net/tcp{,6}` lists in state `0A` (LISTEN).
fn listening_sockets() -> usize {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let mut listening = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|i| inodes.contains(*i)) {
                listening += 1;
            }
        }
    }
    listening
}

#[tokio::test]
async fn no_web_section_and_nothing_that_needs_it_means_no_listening_port() {
    let chat: MemoryConnector =
        connector_from_yaml("connectors:\n  chat: {connector: memory, default-target: lobby}\n")
            .expect("a valid configuration");
    let remote = chat.remote();
    let mut run = TestBot::new()
        .connector(chat)
        .skill(
            Skill::new("ping", |ctx: SkillContext| async move {
                ctx.respond("pong").await
            })
            .regex("ping"),
        )
        .start()
        .expect("starts");
    remote.inject(Message::new("ping").user("ann"));
    let reply = run.next_sent().await.expect("the bot runs and answers");
    assert_eq!(reply.text(), Some("pong"));
    assert_eq!(listening_sockets(), 0, "the bot listens on nothing");
    assert_eq!(run.bot().web().local_addr(), None);

    // The check sees a listener when there is one.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    assert_eq!(listening_sockets(), 1);
    drop(probe);
    run.shutdown().await.expect("a clean shutdown");
}
