//! update_state_by_key and map_with_state against reference models.
