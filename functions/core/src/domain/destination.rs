//! Where create-job sends an upload's outputs, and how it recognises them when they land in a
//! watched bucket (a pipeline must never transcode its own outputs).

/// An output destination such as `s3://{bucket}/{key}_output/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationTemplate {
    template: String,
}

impl DestinationTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let Some(rest) = template.strip_prefix("s3://") else {
            return Err(format!("{template:?} must start with s3://"));
        };
        let (bucket, _) = rest.split_once('/').ok_or_else(|| format!("{template:?} has no path after the bucket"))?;
        if bucket.is_empty() {
            return Err(format!("{template:?} names no bucket"));
        }
        if !template.ends_with('/') {
            return Err(format!("{template:?} must end with / (it is a folder)"));
        }
        if bucket.contains("{key}") {
            return Err(format!("{template:?}: {{key}} cannot be part of the bucket name"));
        }
        Ok(Self { template: template.to_owned() })
    }

    /// The destination for one upload.
    pub fn render(&self, bucket: &str, key: &str) -> String {
        self.template.replace("{bucket}", bucket).replace("{key}", key)
    }

    /// Would an object `key` in `bucket` be an output of some job? (create-job must not transcode
    /// its own outputs.)
    pub fn is_output(&self, bucket: &str, key: &str) -> bool {
        let Some(rest) = self.template.strip_prefix("s3://") else { return false };
        let Some((dest_bucket, path)) = rest.split_once('/') else { return false };
        if dest_bucket.replace("{bucket}", bucket) != bucket {
            return false;
        }
        match path.split_once("{key}") {
            // outputs/{key}/ → anything under outputs/…/ ; {key}_output/ → …_output/…
            Some((before, after)) => {
                let after = after.replace("{bucket}", bucket);
                key.strip_prefix(before).is_some_and(|tail| tail.match_indices(after.as_str()).any(|(i, _)| i > 0))
            }
            None => key.starts_with(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_renders_and_recognises_its_outputs() {
        let d = DestinationTemplate::parse("s3://{bucket}/{key}_output/").unwrap();
        assert_eq!(d.render("b", "Big Buck Bunny.mp4"), "s3://b/Big Buck Bunny.mp4_output/");
        assert!(d.is_output("b", "Big Buck Bunny.mp4_output/Big Buck Bunny.m3u8"));
        assert!(!d.is_output("b", "Big Buck Bunny.mp4"));
        assert!(!d.is_output("b", "_output/x.mp4"));

        let d = DestinationTemplate::parse("s3://out/hls/{key}/").unwrap();
        assert!(!d.is_output("in", "hls/a.mp4/a.m3u8"));
        assert!(d.is_output("out", "hls/a.mp4/a.m3u8"));

        let d = DestinationTemplate::parse("s3://{bucket}/outputs/").unwrap();
        assert!(d.is_output("b", "outputs/a.m3u8"));
        assert!(!d.is_output("b", "uploads/a.mp4"));
    }

    #[test]
    fn destination_must_be_an_s3_folder() {
        assert!(DestinationTemplate::parse("https://x/").is_err());
        assert!(DestinationTemplate::parse("s3://b/out").is_err());
        assert!(DestinationTemplate::parse("s3:///out/").is_err());
    }
}
