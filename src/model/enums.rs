//! Closed OSS vocabularies: storage class, object ACL, object type.

use std::fmt;

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact spelling OSS uses on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// Parses the OSS spelling, ignoring ASCII case; `None` if unknown.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::model::Violation;

            /// Like [`Self::parse`], with a violation listing the accepted values.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| {
                    let accepted: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    crate::model::Violation::new(
                        "",
                        format!(
                            "{} {:?} is not one of {}",
                            $what,
                            s,
                            accepted.join(", ")
                        ),
                    )
                })
            }
        }
    };
}

wire_enum! {
    /// OSS storage class (`x-oss-storage-class`).
    StorageClass, "storage class" {
        /// `Standard`.
        Standard => "Standard",
        /// `IA` (infrequent access).
        Ia => "IA",
        /// `Archive`.
        Archive => "Archive",
        /// `ColdArchive`.
        ColdArchive => "ColdArchive",
        /// `DeepColdArchive`.
        DeepColdArchive => "DeepColdArchive",
    }
}

wire_enum! {
    /// Object ACL (`x-oss-object-acl`).
    ObjectAcl, "object ACL" {
        /// `default`: inherit the bucket ACL.
        Default => "default",
        /// `private`.
        Private => "private",
        /// `public-read`.
        PublicRead => "public-read",
        /// `public-read-write`.
        PublicReadWrite => "public-read-write",
    }
}

wire_enum! {
    /// Object type (`x-oss-object-type`).
    ObjectType, "object type" {
        /// `Normal`: created by PutObject.
        Normal => "Normal",
        /// `Appendable`: created by AppendObject.
        Appendable => "Appendable",
        /// `Multipart`: created by CompleteMultipartUpload.
        Multipart => "Multipart",
        /// `Symlink`: created by PutSymlink.
        Symlink => "Symlink",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings() {
        let classes: Vec<&str> = StorageClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            classes,
            [
                "Standard",
                "IA",
                "Archive",
                "ColdArchive",
                "DeepColdArchive"
            ]
        );
        let acls: Vec<&str> = ObjectAcl::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            acls,
            ["default", "private", "public-read", "public-read-write"]
        );
        let types: Vec<&str> = ObjectType::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(types, ["Normal", "Appendable", "Multipart", "Symlink"]);
    }

    #[test]
    fn parse_round_trips_and_ignores_case() {
        for &c in StorageClass::ALL {
            assert_eq!(StorageClass::parse(c.as_str()), Some(c));
            assert_eq!(StorageClass::parse(&c.as_str().to_uppercase()), Some(c));
            assert_eq!(StorageClass::parse(&c.as_str().to_lowercase()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        for &a in ObjectAcl::ALL {
            assert_eq!(ObjectAcl::parse(a.as_str()), Some(a));
            assert_eq!(ObjectAcl::parse(&a.as_str().to_uppercase()), Some(a));
        }
        for &t in ObjectType::ALL {
            assert_eq!(ObjectType::parse(t.as_str()), Some(t));
            assert_eq!(ObjectType::parse(&t.as_str().to_lowercase()), Some(t));
        }
        assert_eq!(StorageClass::parse("ia"), Some(StorageClass::Ia));
        assert_eq!(
            StorageClass::parse("coldarchive"),
            Some(StorageClass::ColdArchive)
        );
        assert_eq!(ObjectAcl::parse("Public-Read"), Some(ObjectAcl::PublicRead));
    }

    #[test]
    fn unknown_values_are_rejected() {
        for s in [
            "",
            "Std",
            "Standard ",
            " IA",
            "InfrequentAccess",
            "Cold Archive",
        ] {
            assert_eq!(StorageClass::parse(s), None, "{s:?}");
        }
        for s in ["", "public", "public_read", "publicread", "private "] {
            assert_eq!(ObjectAcl::parse(s), None, "{s:?}");
        }
        for s in ["", "normal-object", "link"] {
            assert_eq!(ObjectType::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn from_str_error_lists_accepted_values() {
        assert_eq!("ia".parse::<StorageClass>(), Ok(StorageClass::Ia));
        let err = "Glacier".parse::<StorageClass>().unwrap_err();
        assert_eq!(err.field, "");
        assert_eq!(
            err.description,
            "storage class \"Glacier\" is not one of Standard, IA, Archive, ColdArchive, DeepColdArchive"
        );
        let err = "world".parse::<ObjectAcl>().unwrap_err();
        assert!(err.description.contains("public-read-write"), "{err}");
        assert!("x".parse::<ObjectType>().is_err());
    }
}
