//! Connection-log records as Apache Parquet (feature `parquet`).
//!
//! One string column per JSON field, named as the JSON keys
//! ([`JSON_FIELDS`]); every value is text, as in CloudFront's Parquet
//! connection logs, and a column is nullable where the JSON value can be
//! `null`. Snappy compression, dictionary encoding, one row group per
//! [`Rotation::row_group_rows`] records.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FileMetaData, ParquetMetaData, ParquetMetaDataWriter};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::SchemaDescPtr;

use super::format::JSON_FIELDS;
use super::output::{to_u64, Progress};
use super::rotation::{Completed, FileEncoder, FileState, Rotation, SIDECAR_TAG};
use super::ConnectionLogRecord;

/// The columns that are never null: the JSON fields that are never `null`.
const REQUIRED: [&str; 5] = [
    "eventTimestamp",
    "connectionId",
    "connectionStatus",
    "distributionId",
    "forwarded",
];

/// The Arrow schema of the files: [`JSON_FIELDS`], all `Utf8`.
pub fn parquet_schema() -> SchemaRef {
    Arc::new(Schema::new(
        JSON_FIELDS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, !REQUIRED.contains(name)))
            .collect::<Vec<_>>(),
    ))
}

/// The file handed to the Parquet writer. After a write error it is
/// closed: what the writer still buffers must not land after the footer
/// the file is completed with.
struct ParquetSink {
    file: File,
    closed: bool,
}

impl Write for ParquetSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.file.flush()
    }
}

/// One Parquet file being written.
pub(crate) struct ParquetFile {
    writer: ArrowWriter<ParquetSink>,
    schema: SchemaRef,
    descr: SchemaDescPtr,
    columns: Vec<StringBuilder>,
    /// Records in `columns`.
    buffered: usize,
    /// Records handed to the writer's open row group.
    in_group: usize,
    group_started: Option<SystemTime>,
    max_age: Duration,
    /// Row groups in the file, and their records.
    groups: usize,
    records: u64,
    /// Bytes of whole row groups, and the footer that describes them.
    data_len: u64,
    footer: Vec<u8>,
    sidecar: PathBuf,
    broken: bool,
}

impl ParquetFile {
    pub(crate) fn new(file: File, rotation: &Rotation, sidecar: PathBuf) -> io::Result<Self> {
        let schema = parquet_schema();
        let row_group_rows = rotation.row_group_rows.max(1);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_created_by(concat!("edge-mtls ", env!("CARGO_PKG_VERSION")).to_owned())
            .build();
        let descr = Arc::new(
            ArrowSchemaConverter::new()
                .convert(&schema)
                .map_err(io_error)?,
        );
        let writer = ArrowWriter::try_new(
            ParquetSink {
                file,
                closed: false,
            },
            schema.clone(),
            Some(props),
        )
        .map_err(io_error)?;
        Ok(Self {
            writer,
            columns: (0..JSON_FIELDS.len())
                .map(|_| StringBuilder::with_capacity(1024, 32 * 1024))
                .collect(),
            schema,
            descr,
            buffered: 0,
            in_group: 0,
            group_started: None,
            max_age: rotation.row_group_max_age,
            groups: 0,
            records: 0,
            data_len: 0,
            footer: Vec::new(),
            sidecar,
            broken: false,
        })
    }

    /// Hands the buffered records to the writer (which writes each row
    /// group as it fills).
    fn hand_over(&mut self, now: SystemTime) -> Progress {
        if self.buffered == 0 {
            return Progress::default();
        }
        let held = self.buffered + self.in_group;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| Arc::new(c.finish()) as ArrayRef)
            .collect();
        let rows = std::mem::take(&mut self.buffered);
        let result = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|batch| self.writer.write(&batch).map_err(io_error));
        if let Err(e) = result {
            return self.fail(held, e);
        }
        if self.in_group == 0 {
            self.group_started = Some(now);
        }
        self.in_group += rows;
        self.note_row_groups()
    }

    /// Counts the row groups the writer completed since the last call,
    /// pushes them to the file and saves the footer that describes them.
    fn note_row_groups(&mut self) -> Progress {
        let groups = self.writer.flushed_row_groups();
        if groups.len() == self.groups {
            return Progress::default();
        }
        let rows: i64 = groups[self.groups..].iter().map(|g| g.num_rows()).sum();
        let rows = usize::try_from(rows).unwrap_or(0);
        self.groups = groups.len();
        let total: i64 = groups.iter().map(|g| g.num_rows()).sum();
        let metadata = ParquetMetaData::new(
            FileMetaData::new(
                1,
                total,
                Some(concat!("edge-mtls ", env!("CARGO_PKG_VERSION")).to_owned()),
                None,
                self.descr.clone(),
                None,
            ),
            groups.to_vec(),
        );
        self.in_group -= rows.min(self.in_group);
        if self.in_group == 0 {
            self.group_started = None;
        }
        if let Err(e) = self.writer.sync() {
            // The row groups may be cut: they are lost with the rest.
            return self.fail(rows + self.in_group, e);
        }
        self.records += to_u64(rows);
        self.data_len = to_u64(self.writer.bytes_written());
        self.footer.clear();
        let footer = ParquetMetaDataWriter::new(&mut self.footer, &metadata)
            .with_preserve_page_index_locations(false)
            .finish();
        let mut progress = Progress::written(rows);
        if let Err(e) = footer.map_err(io_error).and_then(|()| self.save_footer()) {
            progress.merge(Progress::failed(0, e));
            self.broken = true;
        }
        progress
    }

    /// Writes `[tag][data length][footer]` beside the file, atomically, so
    /// a crashed process's file can be completed at the next start.
    fn save_footer(&self) -> io::Result<()> {
        let mut saved = Vec::with_capacity(16 + self.footer.len());
        saved.extend_from_slice(SIDECAR_TAG);
        saved.extend_from_slice(&self.data_len.to_le_bytes());
        saved.extend_from_slice(&self.footer);
        let mut next = self.sidecar.clone().into_os_string();
        next.push(".new");
        let next = PathBuf::from(next);
        fs::write(&next, &saved)?;
        fs::rename(&next, &self.sidecar)
    }

    /// A write failed: the `lost` records held are lost and the file takes
    /// no more.
    fn fail(&mut self, lost: usize, error: io::Error) -> Progress {
        self.broken = true;
        self.in_group = 0;
        self.buffered = 0;
        for column in &mut self.columns {
            let _ = column.finish();
        }
        Progress::failed(lost, error)
    }

    /// Completes a file whose writer failed: cut after the last whole row
    /// group, then its footer.
    fn seal(&mut self) -> io::Result<()> {
        let sink = self.writer.inner_mut();
        sink.closed = true;
        sink.file.set_len(self.data_len)?;
        sink.file.seek(SeekFrom::Start(self.data_len))?;
        sink.file.write_all(&self.footer)
    }
}

fn io_error(e: ParquetError) -> io::Error {
    match e {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::other(other),
        },
        other => io::Error::other(other),
    }
}

impl FileEncoder for ParquetFile {
    fn would_exceed(&mut self, _record: &ConnectionLogRecord, max_bytes: u64) -> bool {
        let held = self.records + to_u64(self.in_group + self.buffered);
        // Buffered text counts uncompressed: files end below the limit.
        let buffered: usize = self.columns.iter().map(|c| c.values_slice().len()).sum();
        let size = to_u64(self.writer.bytes_written() + self.writer.in_progress_size() + buffered);
        held > 0 && size >= max_bytes
    }

    fn push(&mut self, r: &ConnectionLogRecord) {
        let [timestamp, id, status, client_ip, client_port, server_ip, server_port, distribution, protocol, cipher, duration, sni, serial, subject, issuer, validity, sha256, custom, generation, forwarded, proxy_ip, detail] =
            &mut self.columns[..]
        else {
            return;
        };
        fn display(column: &mut StringBuilder, value: Option<&impl std::fmt::Display>) {
            match value {
                Some(v) => {
                    let _ = write!(column, "{v}");
                    column.append_value("");
                }
                None => column.append_null(),
            }
        }
        display(timestamp, Some(&r.event_timestamp));
        id.append_value(&r.connection_id);
        display(status, Some(&r.connection_status));
        display(client_ip, r.client_ip.as_ref());
        display(client_port, r.client_port.as_ref());
        display(server_ip, r.server_ip.as_ref());
        display(server_port, r.server_port.as_ref());
        distribution.append_value(&r.distribution_id);
        protocol.append_option(r.tls_protocol.as_deref());
        cipher.append_option(r.tls_cipher.as_deref());
        display(duration, r.tls_handshake_duration.as_ref());
        sni.append_option(r.tls_sni.as_deref());
        serial.append_option(r.client_leaf_cert_serial_number.as_deref());
        subject.append_option(r.client_leaf_cert_subject.as_deref());
        issuer.append_option(r.client_leaf_cert_issuer.as_deref());
        validity.append_option(r.client_leaf_cert_validity.as_deref());
        sha256.append_option(r.client_leaf_cert_sha256.as_deref());
        custom.append_option(r.connection_log_custom_data.as_deref());
        display(generation, r.trust_store_generation.as_ref());
        display(forwarded, Some(&r.forwarded));
        display(proxy_ip, r.proxy_ip.as_ref());
        detail.append_option(r.connection_status_detail.as_deref());
        self.buffered += 1;
    }

    fn write(&mut self, now: SystemTime) -> Progress {
        if self.broken {
            let lost = self.buffered + self.in_group;
            if lost == 0 {
                return Progress::default();
            }
            return self.fail(lost, io::Error::other("the file failed before"));
        }
        self.hand_over(now)
    }

    fn tick(&mut self, now: SystemTime) -> Progress {
        let old = self
            .group_started
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= self.max_age);
        if !old || self.broken {
            return Progress::default();
        }
        let held = self.in_group;
        if let Err(e) = self.writer.flush().map_err(io_error) {
            return self.fail(held, e);
        }
        self.note_row_groups()
    }

    fn pending(&self) -> u64 {
        to_u64(self.buffered + self.in_group)
    }

    fn complete(mut self: Box<Self>) -> Completed {
        let mut progress = self.write(SystemTime::now());
        if !self.broken {
            let held = self.in_group;
            let finished = self
                .writer
                .finish()
                .map_err(io_error)
                .and_then(|metadata| self.writer.sync().map(|()| metadata));
            match finished {
                Ok(metadata) => {
                    progress.merge(Progress::written(held));
                    return Completed {
                        progress,
                        records: u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0),
                        state: FileState::Complete,
                    };
                }
                Err(e) => progress.merge(self.fail(held, e)),
            }
        }
        // The writer failed: the file keeps its whole row groups.
        if self.groups == 0 {
            self.writer.inner_mut().closed = true;
            return Completed {
                progress,
                records: 0,
                state: FileState::Complete,
            };
        }
        let state = match self.seal() {
            Ok(()) => FileState::Complete,
            Err(e) => {
                progress.merge(Progress::failed(0, e));
                FileState::Leftover
            }
        };
        Completed {
            progress,
            records: self.records,
            state,
        }
    }
}
