"""Targeting on the cortical surface: mesh geometry (issue 15).

- :mod:`tmsnet.surface.mesh` - template and file meshes (:class:`~tmsnet.surface.mesh.TemplateMesh`),
  vertex adjacency from the triangles, connected vertex clusters, iterated heat-kernel smoothing
  with a FWHM in mm, and the sgACC seed and DLPFC search region as vertex masks.

Nothing here reads BOLD data or picks a target; the targeting methods use these pieces.
"""
