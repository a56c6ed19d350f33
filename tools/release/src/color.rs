//! The two api tracks.

use std::fmt;
use std::str::FromStr;

/// One of the two api tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    /// The `blue` track.
    Blue,
    /// The `green` track.
    Green,
}

impl Color {
    /// Both colours, blue first.
    pub const BOTH: [Self; 2] = [Self::Blue, Self::Green];

    /// The other colour.
    #[must_use]
    pub const fn other(self) -> Self {
        match self {
            Self::Blue => Self::Green,
            Self::Green => Self::Blue,
        }
    }

    /// `blue` or `green`, as in names, labels and settings.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Blue => "blue",
            Self::Green => "green",
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A colour name that is neither `blue` nor `green`.
#[derive(Debug, thiserror::Error)]
#[error("unknown colour {0:?}: expected blue or green")]
pub struct UnknownColor(pub String);

impl FromStr for Color {
    type Err = UnknownColor;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "blue" => Ok(Self::Blue),
            "green" => Ok(Self::Green),
            other => Err(UnknownColor(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_colour_is_the_others_other_and_parses_from_its_name() {
        for color in Color::BOTH {
            assert_eq!(color.other().other(), color);
            assert_ne!(color.other(), color);
            assert_eq!(color.as_str().parse::<Color>().expect("parses"), color);
        }
        assert!("red".parse::<Color>().is_err());
    }
}
