"""(being built: issue 12)"""

from fastapi import APIRouter

router = APIRouter()
