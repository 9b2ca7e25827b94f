//! Who a send is for: GatewayWorker's sendToClient, sendToUid, sendToGroup and sendToAll, each
//! taking one name or a list.

/// The recipients of a send, by the kind of name that finds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Connections by id.
    Connections(Vec<String>),
    /// Every connection of each uid.
    Uids(Vec<String>),
    /// Every member of each group.
    Groups(Vec<String>),
    /// Every connection.
    All,
}
