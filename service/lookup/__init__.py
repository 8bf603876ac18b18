"""`mode=lookup`: identify what the text is (title, review, company, description), ask IMDb and TMDb."""
