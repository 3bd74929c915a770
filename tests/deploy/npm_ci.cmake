# cmake -DNPM=npm -DDIR=tests/deploy -P npm_ci.cmake
# Installs the deploy checks' npm packages with `npm ci` when DIR/node_modules is missing or
# older than DIR/package-lock.json; otherwise does nothing (the checks then run offline).
if(NOT DEFINED NPM OR NOT DEFINED DIR)
  message(FATAL_ERROR "usage: cmake -DNPM=<npm> -DDIR=<folder with package-lock.json> -P npm_ci.cmake")
endif()

set(installed "${DIR}/node_modules/.package-lock.json")
if(EXISTS "${installed}" AND NOT "${DIR}/package-lock.json" IS_NEWER_THAN "${installed}")
  message(STATUS "npm packages of ${DIR} are installed")
else()
  message(STATUS "npm ci --prefix ${DIR}")
  execute_process(
    COMMAND "${NPM}" ci --prefix "${DIR}" --no-audit --no-fund
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm ci failed (${rc}) in ${DIR}")
  endif()
endif()
