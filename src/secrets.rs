//! Secret inputs, from where they live to the terminal (design §14): where a value comes from
//! (`source`), and how hostile bytes in values and command output are kept from driving the
//! terminal (`escape`). Masking is `crate::mask`.

pub(crate) mod escape;
pub(crate) mod source;
