from bookrec_bookdetail.domain import to_book, unique_ids


def test_unique_ids_collapses_duplicates_in_first_appearance_order():
    assert unique_ids(["OL2W", "OL1W", "OL2W", "GB7", "OL1W"]) == ["OL2W", "OL1W", "GB7"]


def test_to_book_fills_defaults_and_cover_url():
    book = to_book({"book_id": "OL1W", "title": "T", "cover_id": 42, "ratings_distribution": {"5": 2},
                    "rating_count": 2, "rating_sum": 10, "authors": [{"author_id": "OL1A", "name": "A"}]})
    assert book.cover_url == "https://covers.openlibrary.org/b/id/42-L.jpg"
    assert book.ratings_distribution == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 2}
    assert book.avg_rating == 5.0 and book.rating_count == 2
    assert book.authors[0].name == "A" and book.isbn_13 == [] and book.subjects == []


def test_to_book_cover_url_is_the_stored_image_else_none_without_a_cover():
    image = "https://images.gr-assets.com/books/1447303603m/2767052.jpg"
    assert to_book({"book_id": "GB1", "title": "T", "cover_url": image}).cover_url == image
    assert to_book({"book_id": "OL1W", "title": "T", "cover_id": 42, "cover_url": image}).cover_url == image
    assert to_book({"book_id": "OL1W", "title": "T"}).cover_url is None


def test_to_book_shows_series_and_every_shelf_count():
    book = to_book({"book_id": "GB2", "title": "Catching Fire",
                    "series": {"name": "The Hunger Games", "position": 2},
                    "shelf_counts": {"want_to_read": 3, "read": 1, "unknown_shelf": 9}})
    assert book.series is not None and (book.series.name, book.series.position) == ("The Hunger Games", 2.0)
    assert (book.shelf_counts.want_to_read, book.shelf_counts.currently_reading, book.shelf_counts.read) == (3, 0, 1)


def test_to_book_without_series_or_shelvings():
    book = to_book({"book_id": "OL1W", "title": "T", "series": {"name": ""}})
    assert book.series is None
    assert (book.shelf_counts.want_to_read, book.shelf_counts.currently_reading, book.shelf_counts.read) == (0, 0, 0)
