"""Activity feed: messages, followers, activities, attachments and the inbox."""
