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
