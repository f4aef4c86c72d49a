//! One namespace against another on a shared Gateway: each test has a
//! second namespace try to reach what it must not, checks that its object
//! says so, and that the first namespace's traffic is untouched.

mod upstreams;
