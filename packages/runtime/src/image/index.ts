// Public surface of the image store: references, the store (an OCI layout with unpacked layers), the registry
// client, the builder, and the lab images.
export {
  DEFAULT_TAG,
  DOCKER_HUB,
  canonicalReference,
  familiarName,
  familiarReference,
  isDigest,
  parseReference,
  repositoryName,
  type ImageReference,
} from './reference.js';
export {
  DEFAULT_MAX_CONCURRENT_DOWNLOADS,
  ImageStore,
  type ImageInspect,
  type ImageLayerInfo,
  type ImageStoreOptions,
  type ImageSummary,
  type LayerStatus,
  type LoadedImage,
  type PullProgress,
  type PullResult,
  type PushProgress,
  type RemoveResult,
} from './store.js';
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
  RegistryClient,
  parseChallenge,
  type FetchedImage,
  type FetchedManifest,
  type RegistryAuth,
  type RegistryClientOptions,
  type RegistryCredentials,
  type UploadOptions,
} from './registry.js';
export { MEDIA, hostPlatform, platformString, type Descriptor, type ImageIndex, type ImageManifest, type Platform } from './oci.js';
export { BUILD_CREATED, DEFAULT_PATH_ENV, buildImage, buildLayer, imageDocuments, type BuiltLayer, type ImageSpec, type TreeEntry } from './build.js';
export { BUSYBOX_BIN, LAB_IMAGES, buildLabImages, makeImages } from './make-images.js';
