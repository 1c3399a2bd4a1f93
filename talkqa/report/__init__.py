"""Evidence for people: Allure attachments, Allure environment and categories, the sign-off.

Each module turns the judge's typed findings into one audience's format; none of them
decides anything (the verdict rule lives in ``signoff`` and is one line).
"""
