# One image for the operator (`datajobs run`), the HTTP adapter (`datajobs adapter`) and the reference
# workers (`datajobs worker …`). Build: docker build -t datajobs-operator:0.1.0 .
# PYTHON_IMAGE is any image with `python3` (>= 3.11) and its venv module: the official slim image by
# default; `make image` passes a Debian bookworm base it builds itself (python3 + python3-venv, no pip).
# BUILD_IMAGE is the same Python with a C compiler and its headers, for the build stage alone (it compiles
# the masking worker's helper, datajobs/workers/_fastmask.c): the official full image by default; `make
# image` passes its base plus gcc, libc6-dev and python3-dev. The runtime stage gets no compiler.
ARG PYTHON_IMAGE=python:3.11-slim
ARG BUILD_IMAGE=python:3.11
# Must equal pyproject.toml's version (tests/unit/test_packaging.py checks it).
ARG VERSION=0.1.0

# --- build: a wheel of the project, then a virtualenv with it and its dependencies ---------------------
FROM ${BUILD_IMAGE} AS build
ARG VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The build's pip lives in a throwaway virtualenv (from ensurepip: the same on every base, and never the
# base's own pip); the application's virtualenv gets no pip of its own.
RUN python3 -m venv /opt/build \
    && python3 -m venv --without-pip /opt/datajobs
# The dependencies first, read from pyproject.toml alone: a layer that edits of the sources leave cached.
# Wheels only, from the index: the compiler is for the project's own extension.
COPY pyproject.toml ./
RUN /opt/build/bin/python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["workers"]))' > /tmp/requirements.txt \
    && /opt/build/bin/pip --python /opt/datajobs/bin/python install --no-compile --only-binary=:all: \
        -r /tmp/requirements.txt \
    && /opt/datajobs/bin/python -m compileall -q /opt/datajobs/lib
# Then the project's own wheel (its C helper compiled), alone, and a check that it and the dependencies
# agree. The README is the wheel's long description only: an empty one keeps docs edits from changing
# the image.
COPY operator ./operator
RUN : > README.md \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/build/bin/pip --python /opt/datajobs/bin/python install --no-compile --no-deps --no-index \
        --find-links /wheels "datajobs-operator==${VERSION}" \
    && /opt/build/bin/pip --python /opt/datajobs/bin/python check \
    && /opt/datajobs/bin/python -m compileall -q /opt/datajobs/lib \
    && /opt/datajobs/bin/datajobs --help > /dev/null \
    && /opt/datajobs/bin/python -c 'import datajobs.workers._fastmask'

# --- runtime: the slim base, the virtualenv, a numeric non-root user; no compiler, no wheel, no pip use --
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="datajobs-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs and safely cancels data jobs" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/datajobs/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# The application lives in its own virtualenv; a base image's pip and setuptools are not needed at run
# time, so they go (less to patch, nothing to install packages with). The Debian base has none.
RUN if python3 -m pip --version > /dev/null 2>&1; then \
        python3 -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi
COPY --from=build /opt/datajobs /opt/datajobs
# The compiled helper loads on the runtime base too (its libc, its Python), not only where it was built.
RUN ["/opt/datajobs/bin/python", "-c", "import datajobs.workers._fastmask"]
# 65532 is the conventional "nonroot" uid/gid; the chart runs it with a read-only root filesystem.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081 9090
ENTRYPOINT ["datajobs"]
CMD ["--help"]
