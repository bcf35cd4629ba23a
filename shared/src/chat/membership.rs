//! Channels and membership with their events: a change is committed first, then the channel
//! hears `member_joined` / `member_left` and every socket of the user `channel_added` /
//! `channel_removed` (SPEC 5.5).

use super::{Actor, Chat, ChatError};
use crate::protocol::{Channel, MyChannel, Role, ServerFrame};
use crate::store::{Join, Moderation};
use crate::topics::Topic;
use crate::validate::ChannelName;

/// What a get-or-create of a direct channel did.
#[derive(Debug, Clone)]
pub struct Direct {
    pub channel: Channel,
    pub created: bool,
}

impl Chat {
    /// Creates a group channel with `user` as its first member.
    pub async fn create_channel(&self, user: &Actor, name: &str) -> Result<Channel, ChatError> {
        let name = ChannelName::parse(name, self.limits())?;
        let ch = self.store().create_channel(name.as_str(), user.id).await?;
        tracing::info!(channel_id = ch.id, user_id = user.id, "channel created");
        self.announce_added(user.id, ch.id).await?;
        Ok(ch)
    }

    /// Joins a group channel; idempotent (a second join announces nothing). Direct channels
    /// cannot be joined by others.
    pub async fn join(&self, user: &Actor, channel_id: i64) -> Result<MyChannel, ChatError> {
        match self.store().join(channel_id, user.id).await? {
            Join::NoChannel => Err(ChatError::NoChannel),
            Join::Direct => Err(ChatError::Forbidden("direct channels cannot be joined")),
            Join::Already(my) => Ok(my),
            Join::Joined(my) => {
                tracing::info!(channel_id, user_id = user.id, "joined");
                let joined = ServerFrame::MemberJoined {
                    channel_id,
                    user_id: user.id,
                    username: user.name.clone(),
                };
                self.publish(Topic::Channel(channel_id), &joined);
                let added = ServerFrame::ChannelAdded {
                    channel: my.clone(),
                };
                self.publish(Topic::User(user.id), &added);
                Ok(my)
            }
        }
    }

    /// Leaves a channel; idempotent.
    pub async fn leave(&self, user: &Actor, channel_id: i64) -> Result<(), ChatError> {
        if self.store().channel(channel_id).await?.is_none() {
            return Err(ChatError::NoChannel);
        }
        if self.store().leave(channel_id, user.id).await? {
            tracing::info!(channel_id, user_id = user.id, "left");
            self.announce_left(channel_id, user.id);
        }
        Ok(())
    }

    /// An owner or admin removes another member; idempotent. Admins may remove members only;
    /// the owner anyone but themselves (removing oneself is `leave`). The channel hears
    /// `member_left`, every socket of the removed user `channel_removed`.
    pub async fn remove_member(
        &self,
        user: &Actor,
        channel_id: i64,
        target: i64,
    ) -> Result<(), ChatError> {
        if target == user.id {
            return self.leave(user, channel_id).await;
        }
        if self.store().channel(channel_id).await?.is_none() {
            return Err(ChatError::NoChannel);
        }
        let removed = self
            .store()
            .moderate(
                channel_id,
                (user.id, target),
                Moderation::Remove,
                |mine, theirs| match (mine, theirs) {
                    (None, _) => Err(ChatError::NotMember),
                    (Some(r), _) if !r.moderates() => Err(ChatError::Forbidden(
                        "only the channel's owner or an admin may remove a member",
                    )),
                    (_, Some(Role::Owner)) => Err(ChatError::Forbidden(
                        "the channel's owner cannot be removed",
                    )),
                    (Some(Role::Admin), Some(Role::Admin)) => Err(ChatError::Forbidden(
                        "only the channel's owner may remove an admin",
                    )),
                    _ => Ok(()),
                },
            )
            .await?;
        if removed {
            tracing::info!(channel_id, user_id = target, by = user.id, "removed");
            self.announce_left(channel_id, target);
        }
        Ok(())
    }

    /// `member_left` to the channel and `channel_removed` to every socket of the user.
    fn announce_left(&self, channel_id: i64, user_id: i64) {
        let left = ServerFrame::MemberLeft {
            channel_id,
            user_id,
        };
        self.publish(Topic::Channel(channel_id), &left);
        self.publish(
            Topic::User(user_id),
            &ServerFrame::ChannelRemoved { channel_id },
        );
    }

    /// Gets or creates the direct channel of `user` and `other`. Both are (again) members
    /// afterwards; whoever was not hears `channel_added`, and an existing channel hears
    /// `member_joined` for them. Refused while either blocks the other.
    pub async fn direct(&self, user: &Actor, other: i64) -> Result<Direct, ChatError> {
        if other == user.id {
            return Err(ChatError::Validation(
                "a direct channel needs another user".into(),
            ));
        }
        let other = self
            .store()
            .user_by_id(other)
            .await?
            .ok_or(ChatError::NoUser)?;
        self.check_not_blocked(user.id, other.id).await?;
        let before = self.store().direct_members(user.id, other.id).await?;
        let name = if user.id < other.id {
            format!("{},{}", user.name, other.username)
        } else {
            format!("{},{}", other.username, user.name)
        };
        let dm = self
            .store()
            .direct_channel(user.id, other.id, &name)
            .await?;
        let ch = dm.channel;
        for (user_id, username) in [(user.id, &user.name), (other.id, &other.username)] {
            if before.contains(&user_id) {
                continue;
            }
            if !dm.created {
                let joined = ServerFrame::MemberJoined {
                    channel_id: ch.id,
                    user_id,
                    username: username.clone(),
                };
                self.publish(Topic::Channel(ch.id), &joined);
            }
            self.announce_added(user_id, ch.id).await?;
        }
        if dm.created {
            tracing::info!(
                channel_id = ch.id,
                a = user.id,
                b = other.id,
                "direct channel created"
            );
        }
        Ok(Direct {
            channel: ch,
            created: dm.created,
        })
    }

    /// The owner of a channel makes a member an admin (who may delete anyone's message) or
    /// a member again; the channel hears `member_role` when it changed. Owners are made by
    /// creating a channel only.
    pub async fn set_role(
        &self,
        user: &Actor,
        channel_id: i64,
        target: i64,
        role: Role,
    ) -> Result<Role, ChatError> {
        if role == Role::Owner {
            return Err(ChatError::Validation("role must be admin or member".into()));
        }
        if self.store().channel(channel_id).await?.is_none() {
            return Err(ChatError::NoChannel);
        }
        let changed = self
            .store()
            .moderate(
                channel_id,
                (user.id, target),
                Moderation::SetRole(role),
                |mine, theirs| match (mine, theirs) {
                    (None, _) => Err(ChatError::NotMember),
                    (Some(r), _) if r != Role::Owner => Err(ChatError::Forbidden(
                        "only the channel's owner may change roles",
                    )),
                    (_, None) => Err(ChatError::NoUser),
                    (_, Some(Role::Owner)) => {
                        Err(ChatError::Forbidden("the owner's role cannot change"))
                    }
                    _ => Ok(()),
                },
            )
            .await?;
        if changed {
            tracing::info!(
                channel_id,
                user_id = target,
                role = role.as_str(),
                "role changed"
            );
            let frame = ServerFrame::MemberRole {
                channel_id,
                user_id: target,
                role,
            };
            self.publish(Topic::Channel(channel_id), &frame);
        }
        Ok(role)
    }

    /// Tells every socket of `user` that they are now in `channel_id`, with its read state.
    async fn announce_added(&self, user: i64, channel_id: i64) -> Result<(), ChatError> {
        if let Some(my) = self.store().my_channel(user, channel_id).await? {
            self.publish(
                Topic::User(user),
                &ServerFrame::ChannelAdded { channel: my },
            );
        }
        Ok(())
    }
}
