//! What a connection subscribes to: one input file, or a folder (a prefix ending in `/`) that
//! covers every file under it, at any depth.
//!
//! A file's name never ends in `/` (create-job skips S3 folder markers, and `subscribe` refuses
//! such an `input_file`), so a topic's text alone says which it is: stores keep topics as text.

use serde::Serialize;

/// Deepest folder a prefix subscription may name, in `/`-separated levels (`a/b/` is 2). A file
/// is announced to the prefix watchers of its top [`MAX_FOLDER_DEPTH`] folders only, so a change
/// costs at most this many watcher lookups and folder-index writes, whatever the key's length.
pub const MAX_FOLDER_DEPTH: usize = 10;

/// How long a finished job stays in its folders' snapshots, in seconds.
pub const RECENT_AFTER_FINAL_SECS: u64 = 600;
/// How long an unfinished job stays in its folders' snapshots after its last status change, in
/// seconds; a job silent for longer is caught by the reconciler, which ends it.
pub const RECENT_WHILE_RUNNING_SECS: u64 = 48 * 3600;
/// Most files a prefix snapshot carries.
pub const MAX_SNAPSHOT_FILES: usize = 100;

/// A subscription's topic. Serialized as the field that names it in `subscribed` /
/// `unsubscribed`: `"input_file": …` or `"prefix": …`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Topic {
    #[serde(rename = "input_file")]
    File(String),
    #[serde(rename = "prefix")]
    Prefix(String),
}

impl Topic {
    /// The topic as stores keep it: the file's name or the folder with its trailing `/`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::File(name) | Self::Prefix(name) => name,
        }
    }
}

/// Every folder above `target` (a file or a folder), nearest first: `a/b/c.mp4` → `a/b/`, `a/`.
pub fn folders_above(target: &str) -> impl Iterator<Item = &str> {
    let folders: Vec<&str> = target.trim_end_matches('/').match_indices('/').map(|(i, _)| &target[..=i]).collect();
    folders.into_iter().rev()
}

/// How many levels deep a folder is: `a/` is 1, `a/b/` is 2.
pub fn depth(folder: &str) -> usize {
    folder.matches('/').count()
}

/// The folders whose prefix watchers see a change of `file`: its folders from the top down, at
/// most [`MAX_FOLDER_DEPTH`] of them.
pub fn watched_folders(file: &str) -> Vec<&str> {
    let mut folders: Vec<&str> = folders_above(file).collect();
    folders.reverse();
    folders.truncate(MAX_FOLDER_DEPTH);
    folders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_listed_nearest_first_and_watched_from_the_top() {
        assert_eq!(folders_above("a/b/c.mp4").collect::<Vec<_>>(), ["a/b/", "a/"]);
        assert_eq!(folders_above("a/b/").collect::<Vec<_>>(), ["a/"]);
        assert_eq!(folders_above("c.mp4").count(), 0);
        assert_eq!(watched_folders("a/b/c.mp4"), ["a/", "a/b/"]);
        let deep = format!("{}x.mp4", "d/".repeat(12));
        let watched = watched_folders(&deep);
        assert_eq!(watched.len(), MAX_FOLDER_DEPTH);
        assert_eq!(watched.last().copied(), Some("d/".repeat(MAX_FOLDER_DEPTH).as_str()));
        assert_eq!(depth("a/b/"), 2);
    }

    #[test]
    fn a_topic_is_named_by_its_field() {
        assert_eq!(serde_json::to_string(&Topic::Prefix("p/".into())).unwrap(), r#"{"prefix":"p/"}"#);
    }
}
