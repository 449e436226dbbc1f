"""Token counting, prices, usage tracking and budgets."""
