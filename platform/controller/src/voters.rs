//! The static list of controller voters: `1@host:port,2@host:port,3@host:port`.

use std::collections::BTreeMap;
use std::fmt;

/// A Raft node id of a controller (not a broker id).
pub type NodeId = u64;

/// Why a voter list did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotersParseError {
    /// The list has no voter.
    #[error("the voter list is empty: expected id@host:port[,id@host:port...]")]
    Empty,
    /// An item is not `id@host:port`.
    #[error("voter '{0}' is not id@host:port")]
    Malformed(String),
    /// The id is not a non-negative integer.
    #[error("voter '{item}': id '{id}' is not a non-negative integer")]
    InvalidId {
        /// The voter item.
        item: String,
        /// The id text.
        id: String,
    },
    /// The address has no host or no valid port.
    #[error("voter '{item}': address '{addr}' is not host:port with a port in 1..=65535")]
    InvalidAddress {
        /// The voter item.
        item: String,
        /// The address text.
        addr: String,
    },
    /// The same id is listed twice.
    #[error("voter id {0} is listed more than once")]
    DuplicateId(NodeId),
}

/// The controller quorum's voters: node id → address (`host:port`) that the
/// other controllers connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voters {
    voters: BTreeMap<NodeId, String>,
}

impl Voters {
    /// Parse `1@host:port,2@host:port,...`. Whitespace around items is
    /// ignored; hosts may be names, IPv4 or bracketed IPv6 (`[::1]:9093`).
    pub fn parse(text: &str) -> Result<Voters, VotersParseError> {
        let mut voters = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| VotersParseError::Malformed(item.to_string()))?;
            let id: NodeId = id.trim().parse().map_err(|_| VotersParseError::InvalidId {
                item: item.to_string(),
                id: id.to_string(),
            })?;
            let addr = addr.trim();
            let bad_addr = || VotersParseError::InvalidAddress {
                item: item.to_string(),
                addr: addr.to_string(),
            };
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad_addr)?;
            let port: u16 = port.parse().map_err(|_| bad_addr())?;
            if host.is_empty() || port == 0 || host == "[]" {
                return Err(bad_addr());
            }
            if voters.insert(id, addr.to_string()).is_some() {
                return Err(VotersParseError::DuplicateId(id));
            }
        }
        if voters.is_empty() {
            return Err(VotersParseError::Empty);
        }
        Ok(Voters { voters })
    }

    /// Voter ids with their addresses, ascending by id.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.voters.iter().map(|(id, a)| (*id, a.as_str()))
    }

    /// The address of a voter.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.voters.get(&id).map(String::as_str)
    }

    /// Whether `id` is a voter.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains_key(&id)
    }

    /// The lowest voter id: the node that initializes a new cluster.
    pub fn lowest_id(&self) -> NodeId {
        self.voters.keys().next().copied().unwrap_or_default()
    }

    /// Number of voters.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// Always false: a parsed list has at least one voter.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }
}

impl fmt::Display for Voters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.iter().map(|(id, a)| format!("{id}@{a}")).collect();
        f.write_str(&items.join(","))
    }
}

impl std::str::FromStr for Voters {
    type Err = VotersParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Voters::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list() {
        let v = Voters::parse("2@b:9093, 1@a:9093,3@[::1]:9094").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.lowest_id(), 1);
        assert_eq!(v.address(3), Some("[::1]:9094"));
        assert_eq!(v.to_string(), "1@a:9093,2@b:9093,3@[::1]:9094");
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(Voters::parse(""), Err(VotersParseError::Empty));
        assert_eq!(Voters::parse(" , "), Err(VotersParseError::Empty));
        assert!(matches!(
            Voters::parse("a:1"),
            Err(VotersParseError::Malformed(_))
        ));
        assert!(matches!(
            Voters::parse("x@a:1"),
            Err(VotersParseError::InvalidId { .. })
        ));
        assert!(matches!(
            Voters::parse("-1@a:1"),
            Err(VotersParseError::InvalidId { .. })
        ));
        for bad in ["1@a", "1@:9", "1@a:0", "1@a:70000", "1@a:x"] {
            assert!(
                matches!(
                    Voters::parse(bad),
                    Err(VotersParseError::InvalidAddress { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            Voters::parse("1@a:1,1@b:2"),
            Err(VotersParseError::DuplicateId(1))
        );
    }
}
