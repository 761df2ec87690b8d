//! `crate = "…"` lets the macros work when connector_core is used under another name.
#![deny(warnings)]

extern crate connector_core as renamed_core;

use renamed_core::events::Message;
use renamed_core::{Bot, Connector, ConnectorInfo, Event, EventMeta, connector, register_event};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(crate = "renamed_core")]
struct Ping {
    meta: EventMeta,
}

#[connector(name = "renamed", crate = "renamed_core")]
struct Renamed {}

#[connector(crate = "renamed_core")]
impl Renamed {
    async fn connect(&self) -> renamed_core::Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> renamed_core::Result<()> {
        Ok(())
    }
    #[register_event(Message)]
    async fn send_message(&self, _m: &Message) -> renamed_core::Result<()> {
        Ok(())
    }
    #[register_event(Ping)]
    async fn send_ping(&self, _p: &Ping) -> renamed_core::Result<()> {
        Ok(())
    }
}

mod inner {
    /// A facade re-exporting the core under a module path.
    pub mod sdk {
        pub use connector_core::*;
    }
}

#[connector(crate = "inner::sdk")]
struct ViaModule;

#[connector(crate = "inner::sdk")]
impl ViaModule {
    async fn connect(&self) {}
    async fn listen(&self, _bot: &Bot) {}
}

fn main() {
    assert_eq!(Renamed::TYPE, "renamed");
    assert_eq!(ViaModule::TYPE, "via_module");
    assert!(ViaModule::SUPPORTED.is_empty());
    let _ = Ping {
        meta: EventMeta::default(),
    }
    .meta();
}
