//! What the kind attributes expand to: the WebAssembly component exports
//! (on `wasm32`) and the C ABI exports (elsewhere), from one macro so a
//! plugin's source has no `cfg` of its own.
//!
//! The C ABI symbols have fixed names, so two plugins linked into one binary
//! would clash. A host that compiles plugins in as built-ins enables the
//! `embedded` feature of `fjord-sdk`, which leaves them out.

#[doc(hidden)]
#[macro_export]
macro_rules! __export {
    (processor, $t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __FjordGuest;
            ::std::thread_local! {
                static __FJORD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            impl $crate::wasm::processor::exports::fjord::plugin::processor_plugin::Guest for __FjordGuest {
                fn describe() -> $crate::wasm::imports::types::PluginInfo {
                    $crate::wasm::describe::<$t>($crate::PluginKind::Processor)
                }
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let p = $crate::wasm::init::<$t>(config)?;
                    __FJORD_INSTANCE.with(|c| *c.borrow_mut() = ::std::option::Option::Some(p));
                    ::std::result::Result::Ok(())
                }
                fn process(
                    _partition: i32,
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            $crate::kinds::run_process(p, &batch, &mut $crate::Context::wasm())
                        })
                    })
                }
                fn on_timer(
                    _partition: i32,
                    now_ms: i64,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            $crate::kinds::run_timer(p, now_ms, &mut $crate::Context::wasm())
                        })
                    })
                }
            }
            $crate::wasm::processor::__export_processor_world!(__FjordGuest);
        };
        $crate::__export_native!($crate::native::ProcessorAdapter<$t>);
    };
    (source, $t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __FjordGuest;
            ::std::thread_local! {
                static __FJORD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            impl $crate::wasm::source::exports::fjord::plugin::source_plugin::Guest for __FjordGuest {
                fn describe() -> $crate::wasm::imports::types::PluginInfo {
                    $crate::wasm::describe::<$t>($crate::PluginKind::Source)
                }
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    position: ::std::option::Option<::std::vec::Vec<u8>>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let mut p = $crate::wasm::init::<$t>(config)?;
                    if let ::std::option::Option::Some(pos) = position {
                        <$t as $crate::Source>::seek(&mut p, &pos)
                            .map_err(|e| e.message().to_owned())?;
                    }
                    __FJORD_INSTANCE.with(|c| *c.borrow_mut() = ::std::option::Option::Some(p));
                    ::std::result::Result::Ok(())
                }
                fn poll(
                    max: u32,
                ) -> ::std::result::Result<
                    $crate::wasm::imports::types::Polled,
                    ::std::string::String,
                > {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            let (batch, position) =
                                $crate::kinds::run_poll(p, max, &mut $crate::Context::wasm())?;
                            ::std::result::Result::Ok($crate::wasm::imports::types::Polled {
                                batch,
                                position,
                            })
                        })
                    })
                }
            }
            $crate::wasm::source::__export_source_world!(__FjordGuest);
        };
        $crate::__export_native!($crate::native::SourceAdapter<$t>);
    };
    (sink, $t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __FjordGuest;
            ::std::thread_local! {
                static __FJORD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            impl $crate::wasm::sink::exports::fjord::plugin::sink_plugin::Guest for __FjordGuest {
                fn describe() -> $crate::wasm::imports::types::PluginInfo {
                    $crate::wasm::describe::<$t>($crate::PluginKind::Sink)
                }
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let p = $crate::wasm::init::<$t>(config)?;
                    __FJORD_INSTANCE.with(|c| *c.borrow_mut() = ::std::option::Option::Some(p));
                    ::std::result::Result::Ok(())
                }
                fn write(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            $crate::kinds::run_write(p, &batch, &mut $crate::Context::wasm())
                        })
                    })
                }
                fn flush() -> ::std::result::Result<(), ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            <$t as $crate::Sink>::flush(p, &mut $crate::Context::wasm())
                        })
                    })
                }
            }
            $crate::wasm::sink::__export_sink_world!(__FjordGuest);
        };
        $crate::__export_native!($crate::native::SinkAdapter<$t>);
    };
    (partitioner, $t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __FjordGuest;
            ::std::thread_local! {
                static __FJORD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            impl $crate::wasm::partitioner::exports::fjord::plugin::partitioner_plugin::Guest for __FjordGuest {
                fn describe() -> $crate::wasm::imports::types::PluginInfo {
                    $crate::wasm::describe::<$t>($crate::PluginKind::Partitioner)
                }
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let p = $crate::wasm::init::<$t>(config)?;
                    __FJORD_INSTANCE.with(|c| *c.borrow_mut() = ::std::option::Option::Some(p));
                    ::std::result::Result::Ok(())
                }
                fn partition(
                    key: ::std::option::Option<::std::vec::Vec<u8>>,
                    value: ::std::option::Option<::std::vec::Vec<u8>>,
                    partition_count: u32,
                ) -> u32 {
                    __FJORD_INSTANCE.with(|c| match c.borrow_mut().as_mut() {
                        ::std::option::Option::Some(p) => <$t as $crate::Partitioner>::partition(
                            p,
                            key.as_deref(),
                            value.as_deref(),
                            partition_count,
                        ),
                        // The host always calls init first; a trap tells it otherwise.
                        ::std::option::Option::None => {
                            ::std::unreachable!("partition called before init")
                        }
                    })
                }
            }
            $crate::wasm::partitioner::__export_partitioner_world!(__FjordGuest);
        };
        $crate::__export_native!($crate::native::PartitionerAdapter<$t>);
    };
    (serializer, $t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __FjordGuest;
            ::std::thread_local! {
                static __FJORD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            impl $crate::wasm::serializer::exports::fjord::plugin::serializer_plugin::Guest for __FjordGuest {
                fn describe() -> $crate::wasm::imports::types::PluginInfo {
                    $crate::wasm::describe::<$t>($crate::PluginKind::Serializer)
                }
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let p = $crate::wasm::init::<$t>(config)?;
                    __FJORD_INSTANCE.with(|c| *c.borrow_mut() = ::std::option::Option::Some(p));
                    ::std::result::Result::Ok(())
                }
                fn serialize(
                    input: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            <$t as $crate::Serializer>::serialize(p, &input)
                        })
                    })
                }
                fn deserialize(
                    bytes: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    __FJORD_INSTANCE.with(|c| {
                        $crate::wasm::with(&mut c.borrow_mut(), |p| {
                            <$t as $crate::Serializer>::deserialize(p, &bytes)
                        })
                    })
                }
            }
            $crate::wasm::serializer::__export_serializer_world!(__FjordGuest);
        };
        $crate::__export_native!($crate::native::SerializerAdapter<$t>);
    };
}

#[cfg(not(feature = "embedded"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_native {
    ($adapter:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn fjord_plugin_abi_version() -> u32 {
                $crate::native::ABI_VERSION
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn fjord_plugin_describe(out: *mut $crate::native::FjBuf) {
                unsafe { $crate::native::describe::<$adapter>(out) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn fjord_plugin_init(
                host: *const $crate::native::FjHost,
                config: *const u8,
                config_len: usize,
                position: *const u8,
                position_len: usize,
                err: *mut $crate::native::FjBuf,
            ) -> *mut ::std::ffi::c_void {
                unsafe {
                    $crate::native::init::<$adapter>(
                        host,
                        config,
                        config_len,
                        position,
                        position_len,
                        err,
                    )
                }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn fjord_plugin_call(
                instance: *mut ::std::ffi::c_void,
                op: u32,
                a: *const u8,
                a_len: usize,
                b: *const u8,
                b_len: usize,
                arg: i64,
                out: *mut $crate::native::FjBuf,
            ) -> u32 {
                unsafe { $crate::native::call(instance, op, a, a_len, b, b_len, arg, out) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn fjord_plugin_free(buf: $crate::native::FjBuf) {
                unsafe { $crate::native::free(buf) }
            }
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn fjord_plugin_drop(instance: *mut ::std::ffi::c_void) {
                unsafe { $crate::native::drop_instance(instance) }
            }
        };
    };
}

#[cfg(feature = "embedded")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_native {
    ($adapter:ty) => {};
}
