//! What happens to accepted data: validation, forwarding, the stores and span metrics, in that order.
