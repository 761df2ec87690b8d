//! A small line-based chat server to try the walkthrough bot against (and what its tests
//! run it on). One room namespace, everyone hears everything. Plain threads and the
//! standard library: it needs nothing the bot does not.
//!
//! ```text
//! linechat-server [--port 7000] [--token secret]
//! ```
//!
//! A client logs in with `AUTH <token> <nick>` and is answered `WELCOME <nick>` (with `_`
//! added while the nick is taken) or `DENIED <why>`, and the others hear `JOINED <nick>`. Then `SAY <room> <text>` reaches every
//! client, the sender included, as `MSG <id> <room> <nick> <text>`; `REPLY <to-id> <room>
//! <text>` as `REPLY <id> <to-id> <room> <nick> <text>`; `TYPING <room> on|off` reaches the
//! others as `TYPING <room> <nick> on|off`. Try it by hand with `nc 127.0.0.1 7000`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Who is logged in (and their sockets), and the last message id given out.
#[derive(Default)]
struct Room {
    clients: HashMap<String, TcpStream>,
    last_id: u64,
}

type Shared = Arc<Mutex<Room>>;

/// Sends `line` to every client, or to every client but `except`; drops clients whose
/// socket fails.
fn broadcast(room: &mut Room, line: &str, except: Option<&str>) {
    room.clients.retain(|nick, stream| {
        Some(nick.as_str()) == except || stream.write_all(format!("{line}\n").as_bytes()).is_ok()
    });
}

fn serve(stream: TcpStream, room: Shared, token: Option<String>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut lines = BufReader::new(stream.try_clone()?).lines();
    let login = lines.next().transpose()?.unwrap_or_default();
    let mut words = login.splitn(3, ' ');
    let (Some("AUTH"), Some(given), Some(nick)) = (words.next(), words.next(), words.next()) else {
        return writer.write_all(b"DENIED expected AUTH <token> <nick>\n");
    };
    if token.as_deref().is_some_and(|t| t != given) || nick.is_empty() || nick.contains(' ') {
        return writer.write_all(b"DENIED bad token or nick\n");
    }
    let nick = {
        let mut room = room.lock().unwrap();
        let mut name = nick.to_owned();
        while room.clients.contains_key(&name) {
            name.push('_');
        }
        writer.write_all(format!("WELCOME {name}\n").as_bytes())?;
        broadcast(&mut room, &format!("JOINED {name}"), None);
        room.clients.insert(name.clone(), stream);
        name
    };
    for line in lines {
        let Ok(line) = line else { break };
        let mut room = room.lock().unwrap();
        let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match (command, rest.split_once(' ')) {
            ("SAY", Some((to_room, text))) => {
                room.last_id += 1;
                let line = format!("MSG {} {to_room} {nick} {text}", room.last_id);
                broadcast(&mut room, &line, None);
            }
            ("REPLY", Some((to, rest))) => {
                if let Some((to_room, text)) = rest.split_once(' ') {
                    room.last_id += 1;
                    let line = format!("REPLY {} {to} {to_room} {nick} {text}", room.last_id);
                    broadcast(&mut room, &line, None);
                }
            }
            ("TYPING", Some((to_room, state))) => {
                let line = format!("TYPING {to_room} {nick} {state}");
                broadcast(&mut room, &line, Some(&nick));
            }
            _ => {}
        }
    }
    room.lock().unwrap().clients.remove(&nick);
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut port = 7000;
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => port = p.parse().map_err(std::io::Error::other)?,
            ("--token", Some(t)) => token = Some(t),
            _ => {
                eprintln!("usage: linechat-server [--port 7000] [--token secret]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    // The first line says where it listens (with `--port 0`, the port it was given).
    println!("linechat-server listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let room = Shared::default();
    for stream in listener.incoming() {
        let (stream, room, token) = (stream?, room.clone(), token.clone());
        std::thread::spawn(move || serve(stream, room, token));
    }
    Ok(())
}
