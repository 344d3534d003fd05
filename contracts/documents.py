"""The documents an application carries (design §6: the kinds of
`PUT /v1/applications/{id}/documents/{kind}`), their names for people, and which ones each
household needs. A contract: enrollment refuses a submission without them, and the pages
(services/web) ask for them and show them.

Guide PART-6 with Q2 ("本市户籍或居住地为本市的我省户籍人员"): both ID card sides; a Changzhou
household proves itself with the household register's first and own page, a Jiangsu household
from another city proves residence in Changzhou with the residence permit (居住证)."""

DOCUMENT_LABELS = {
    "id_card_front": "身份证正面",
    "id_card_back": "身份证反面",
    "hukou_first_page": "户口簿首页",
    "hukou_own_page": "户口簿本人页",
    "residence_permit": "居住证",
}
DOCUMENT_KINDS = tuple(DOCUMENT_LABELS)

REQUIRED_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "changzhou": ("id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page"),
    "jiangsu_resident": ("id_card_front", "id_card_back", "residence_permit"),
}
