"""The one /admin router: every domain's staff routes, behind one role gate."""

from fastapi import APIRouter, Depends

from app.auth.deps import require_admin
from app.users.admin import router as users_admin_router

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
router.include_router(users_admin_router)
