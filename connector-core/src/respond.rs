//! Answers: how a response inherits from the event it answers (opsdroid's `Event.respond`).

use crate::bot::Bot;
use crate::error::SendError;
use crate::model::{AnyEvent, Linked};

impl Bot {
    /// Answers `trigger` with `response`, as opsdroid's `event.respond`: the response takes
    /// user, user id, target and connector from the trigger unless set, and links it.
    pub async fn respond(
        &self,
        trigger: &AnyEvent,
        response: impl Into<AnyEvent>,
    ) -> Result<(), SendError> {
        self.send(prepare_response(trigger, response)).await
    }
}
/// Makes `response` an answer to `trigger`, as opsdroid's `Event.respond` does: the
/// response takes user, user_id, target and connector from the trigger unless it already has
/// them, and its `linked_event` becomes the trigger.
pub fn prepare_response(trigger: &AnyEvent, response: impl Into<AnyEvent>) -> AnyEvent {
    let mut response = response.into();
    let from = trigger.meta();
    let needs = {
        let m = response.meta();
        m.user.is_none()
            || m.user_id.is_none()
            || m.target.is_none()
            || m.connector.is_none()
            || m.linked_event.is_none()
    };
    if needs {
        let (user, user_id, target, connector) = (
            from.user.clone(),
            from.user_id.clone(),
            from.target.clone(),
            from.connector.clone(),
        );
        let m = response.meta_mut();
        if m.user.is_none() {
            m.user = user;
        }
        if m.user_id.is_none() {
            m.user_id = user_id.or_else(|| m.user.clone());
        }
        if m.target.is_none() {
            m.target = target;
        }
        if m.connector.is_none() {
            m.connector = connector;
        }
        if m.linked_event.is_none() {
            m.linked_event = Some(Linked::Event(trigger.clone()));
        }
    }
    response
}
